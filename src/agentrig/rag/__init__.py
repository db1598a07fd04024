"""Chat with a knowledge base: the RAG agent, its search tool and its prompts."""
