"""The agent runtime: agents, the loop's steps, runners, guardrails, events, run state."""

from agentrig.agents.agent import Agent, AgentTool, Handoff, drop_tool_history, handoff
from agentrig.agents.agent_runner import AgentRunner
from agentrig.agents.context import RunContext
from agentrig.agents.events import (
    AgentChanged,
    ItemEvent,
    RunEvent,
    RunFinished,
    TextDeltaEvent,
    ToolArgumentsDeltaEvent,
)
from agentrig.agents.guardrails import (
    Guardrail,
    GuardrailResult,
    agent_guardrail,
    input_guardrail,
    output_guardrail,
)
from agentrig.agents.loop import assemble, dispatch_tools, infer, persist, rehydrate
from agentrig.agents.result import RunResult
from agentrig.agents.routing import default_router, set_default_router
from agentrig.agents.runner import Runner
from agentrig.agents.state import Interruption, RunState, StateVersionError
from agentrig.agents.streaming import RunResultStreaming

__all__ = [
    "Agent",
    "AgentChanged",
    "AgentRunner",
    "AgentTool",
    "Guardrail",
    "GuardrailResult",
    "Handoff",
    "Interruption",
    "ItemEvent",
    "RunContext",
    "RunEvent",
    "RunFinished",
    "RunResult",
    "RunResultStreaming",
    "RunState",
    "Runner",
    "StateVersionError",
    "TextDeltaEvent",
    "ToolArgumentsDeltaEvent",
    "agent_guardrail",
    "assemble",
    "default_router",
    "dispatch_tools",
    "drop_tool_history",
    "handoff",
    "infer",
    "input_guardrail",
    "output_guardrail",
    "persist",
    "rehydrate",
    "set_default_router",
]
