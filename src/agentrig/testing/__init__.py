"""Helpers for testing agentrig applications without a real model.

``ScriptedModel`` plays back a script of turns (``text``, ``tool_call``, several in one
turn, or an exception) as real streamed deltas and records every request it received.
``agentrig.testing.fake_openai_server.FakeOpenAIServer`` is a real HTTP server speaking the
Chat Completions protocol, for code that talks to an OpenAI-compatible endpoint.
"""

from agentrig.llm.scripted import ScriptedModel, ScriptExhausted, text, tool_call

__all__ = ["ScriptExhausted", "ScriptedModel", "text", "tool_call"]
