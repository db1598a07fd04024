"""agentrig: build, run and serve LLM agents.

One LLM boundary (:class:`~agentrig.llm.router.ModelRouter`), an explicit agent loop, and
an OpenAI-compatible server, with embedded defaults that run on a laptop.
"""

from agentrig.config import Settings, load_settings
from agentrig.errors import (
    AgentrigError,
    AuthenticationFailed,
    BadRequest,
    BudgetExceeded,
    ConfigError,
    ContextTooLong,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from agentrig.items import (
    FunctionCall,
    FunctionCallOutput,
    Item,
    Message,
    Reasoning,
    assistant_message,
    user_message,
)
from agentrig.llm.router import ModelRouter
from agentrig.llm.types import (
    Embedder,
    LLMClient,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    ToolSpec,
)
from agentrig.usage import Usage

__version__ = "0.1.0"

__all__ = [
    "AgentrigError",
    "AuthenticationFailed",
    "BadRequest",
    "BudgetExceeded",
    "ConfigError",
    "ContextTooLong",
    "Embedder",
    "FunctionCall",
    "FunctionCallOutput",
    "Item",
    "LLMClient",
    "LLMError",
    "Message",
    "ModelRequest",
    "ModelResponse",
    "ModelRouter",
    "ModelSettings",
    "OutputSchema",
    "ProviderUnavailable",
    "RateLimited",
    "Reasoning",
    "Settings",
    "Timeout",
    "ToolSpec",
    "Usage",
    "assistant_message",
    "load_settings",
    "user_message",
]
