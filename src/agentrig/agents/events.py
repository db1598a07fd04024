"""The events a streamed run yields, each naming the agent that produced it.

Raw deltas come straight from the model stream; item events mark whole items (a message,
a tool call, its output, a handoff); ``AgentChanged`` follows a handoff; ``RunFinished``
ends every stream. Events of an agent used as a tool reach the parent's stream with that
agent's name, so a UI can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agentrig.items import Item

ItemEventName = Literal[
    "message_output",
    "tool_called",
    "tool_output",
    "handoff_requested",
    "handoff_done",
    "reasoning",
]


@dataclass(slots=True)
class TextDeltaEvent:
    agent: str
    item_id: str
    delta: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(slots=True)
class ToolArgumentsDeltaEvent:
    agent: str
    item_id: str
    call_id: str
    name: str
    delta: str
    type: Literal["tool_arguments_delta"] = "tool_arguments_delta"


@dataclass(slots=True)
class ItemEvent:
    agent: str
    name: ItemEventName
    item: Item
    type: Literal["item"] = "item"


@dataclass(slots=True)
class AgentChanged:
    agent: str
    previous: str
    type: Literal["agent_changed"] = "agent_changed"


@dataclass(slots=True)
class RunFinished:
    agent: str
    result: Any  # RunResult
    type: Literal["run_finished"] = "run_finished"


RunEvent = TextDeltaEvent | ToolArgumentsDeltaEvent | ItemEvent | AgentChanged | RunFinished
