"""agentrig: build, run and serve LLM agents.

One LLM boundary (:class:`~agentrig.llm.router.ModelRouter`), an explicit agent loop, and
an OpenAI-compatible server, with embedded defaults that run on a laptop.
"""

from importlib import metadata

from agentrig.agents import (
    Agent,
    AgentRunner,
    GuardrailResult,
    Handoff,
    RunContext,
    Runner,
    RunResult,
    RunState,
    agent_guardrail,
    handoff,
    input_guardrail,
    output_guardrail,
)
from agentrig.config import Settings, load_settings
from agentrig.errors import (
    AgentrigError,
    AuthenticationFailed,
    BadRequest,
    BudgetExceeded,
    ConfigError,
    ContextTooLong,
    GuardrailTripped,
    LLMError,
    MaxTurnsExceeded,
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
from agentrig.tools import ToolContext, calculator, tool
from agentrig.usage import Usage

__version__ = metadata.version("agentrig")  # pyproject.toml says which

__all__ = [
    "Agent",
    "AgentRunner",
    "AgentrigError",
    "AuthenticationFailed",
    "BadRequest",
    "BudgetExceeded",
    "ConfigError",
    "ContextTooLong",
    "Embedder",
    "FunctionCall",
    "FunctionCallOutput",
    "GuardrailResult",
    "GuardrailTripped",
    "Handoff",
    "Item",
    "LLMClient",
    "LLMError",
    "MaxTurnsExceeded",
    "Message",
    "ModelRequest",
    "ModelResponse",
    "ModelRouter",
    "ModelSettings",
    "OutputSchema",
    "ProviderUnavailable",
    "RateLimited",
    "Reasoning",
    "RunContext",
    "RunResult",
    "RunState",
    "Runner",
    "Settings",
    "Timeout",
    "ToolContext",
    "ToolSpec",
    "Usage",
    "agent_guardrail",
    "assistant_message",
    "calculator",
    "handoff",
    "input_guardrail",
    "load_settings",
    "output_guardrail",
    "tool",
    "user_message",
]
