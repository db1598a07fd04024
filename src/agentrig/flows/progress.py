"""One line of progress per flow event, for the CLI and anything else that follows a run.

A nested crew's events are described by :func:`agentrig.crews.progress.describe`; an
agent's tool calls, tool results, handoffs and its closing totals get a line each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentrig.agents import AgentChanged, ItemEvent, RunFinished
from agentrig.crews.progress import describe as describe_crew
from agentrig.flows.events import (
    FlowStarted,
    StateEntered,
    StateFinished,
    StepEvent,
    TransitionTaken,
)
from agentrig.flows.records import StepRecord


def short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def seconds(step: StepRecord) -> float:
    try:
        started = datetime.fromisoformat(step.started_at)
        return (datetime.fromisoformat(step.finished_at) - started).total_seconds()
    except ValueError:
        return 0.0


def _agent_line(event: Any) -> str | None:
    """A line for an agent's event inside a flow step (``None`` for deltas and the like)."""
    if isinstance(event, ItemEvent) and event.name == "tool_called":
        item: Any = event.item
        return f"{event.agent} calls {item.name}({short(item.arguments, 60)})"
    if isinstance(event, ItemEvent) and event.name == "tool_output":
        return f"{event.agent} got: {short(getattr(event.item, 'output', ''), 60)}"
    if isinstance(event, AgentChanged):
        return f"{event.previous} hands off to {event.agent}"
    if isinstance(event, RunFinished):
        result = event.result
        waiting = f", {len(result.interruptions)} tool calls to approve"
        return (
            f"{event.agent}: {result.usage.total_tokens} tokens, ${result.cost_micros / 1e6:.4f}"
            + (waiting if result.interruptions else "")
        )
    return None


def describe(event: Any) -> str | None:
    """A progress line for a flow event; a nested crew's or agent's is indented."""
    if isinstance(event, FlowStarted):
        verb = "resumes" if event.resumed else "starts"
        return f"flow {event.flow}: run {event.run_id} {verb} at {event.state}"
    if isinstance(event, StateEntered):
        return f"◆ {event.state}" + (f" (visit {event.visit})" if event.visit > 1 else "")
    if isinstance(event, StateFinished):
        step = event.step
        tail = f": {short(step.error or step.output)}" if step.status == "failed" else ""
        return (
            f"◇ {step.state}: {step.status}, {step.usage.total_tokens} tokens, "
            f"${step.cost:.4f}, {seconds(step):.1f} s{tail}"
        )
    if isinstance(event, TransitionTaken):
        return f"  {event.source} → {event.target} ({event.condition})"
    if isinstance(event, StepEvent):
        line = _agent_line(event.event) or describe_crew(event.event)
        return None if line is None else f"  {line}"
    return None
