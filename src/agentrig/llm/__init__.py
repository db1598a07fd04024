"""The LLM boundary: every model call in agentrig goes through :class:`ModelRouter`.

Only this package imports provider SDKs. See docs/llm.md.
"""

from agentrig.llm.router import ModelRouter
from agentrig.llm.types import Embedder, LLMClient, ModelRequest, ModelResponse

__all__ = ["Embedder", "LLMClient", "ModelRequest", "ModelResponse", "ModelRouter"]
