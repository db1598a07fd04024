"""One line of plain text per crew event, for ``verbose=True`` and the CLI's live progress."""

from __future__ import annotations

from agentrig.crews.events import (
    CrewEvent,
    CrewFinished,
    CrewStarted,
    ModelCalled,
    TaskDelegated,
    TaskFinished,
    TaskRetrying,
    TaskStarted,
)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(event: CrewEvent) -> str | None:
    """A line saying what happened (``None`` for events not worth a line of their own)."""
    if isinstance(event, CrewStarted):
        return f"crew {event.crew}: {len(event.tasks)} tasks"
    if isinstance(event, TaskStarted):
        again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        return f"▶ {event.task}: {event.agent}{again}"
    if isinstance(event, ModelCalled):
        tokens, cost = event.usage.total_tokens, event.task_cost_micros / 1e6
        return f"  {event.task}: {event.agent} {tokens} tokens, task ${cost:.4f}"
    if isinstance(event, TaskDelegated):
        verb = "asks" if event.kind == "ask_question" else "delegates to"
        return f"  {event.task}: {event.agent} {verb} {event.coworker}: {_short(event.request)}"
    if isinstance(event, TaskRetrying):
        return f"  {event.task}: sent back ({_short(event.feedback)}), attempt {event.attempt}"
    if isinstance(event, TaskFinished):
        out = event.output
        tail = f": {_short(out.error)}" if out.error else ""
        return (
            f"■ {out.task}: {out.status}, {out.usage.total_tokens} tokens, ${out.cost:.4f}, "
            f"{out.duration:.1f} s{tail}"
        )
    if isinstance(event, CrewFinished):
        result = event.result
        return f"crew {result.status}: {result.usage.total_tokens} tokens, ${result.cost:.4f}"
    return None
