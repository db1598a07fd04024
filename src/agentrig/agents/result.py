"""``RunResult``: what a finished (or paused) run returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentrig.items import Item
from agentrig.usage import Usage

if TYPE_CHECKING:
    from agentrig.agents.agent import Agent
    from agentrig.agents.state import Interruption, RunState


@dataclass
class RunResult:
    """``final_output`` is the last agent's answer (text, or its ``output_type``); it is
    ``None`` while ``interruptions`` lists tool calls waiting for approval."""

    final_output: Any
    new_items: list[Item]
    last_agent: Agent
    usage: Usage
    cost_micros: int
    context: dict[str, Any]
    interruptions: list[Interruption]
    state: RunState
    input_items: list[Item]
    conversation_id: str | None = None
