"""agentrig's OpenAI-compatible server: the Responses API over HTTP, backed by agents."""
