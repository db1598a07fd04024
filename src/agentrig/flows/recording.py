"""``StoreRecorder``: a flow run written to the store at every step boundary.

While a run goes on, a step boundary is one small row: the finished step, and where the
run stands after it (the next state, the variables, the visits); the head row is written
when the run starts (or resumes), pauses or ends (see :mod:`agentrig.store.flow_runs`).
So the write costs the same at the hundredth step as at the first: the record is never
rewritten whole, and a step's JSON and totals are made once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json

from agentrig.flows.records import FlowRun
from agentrig.store.flow_runs import AFTER, FlowRunStore, RunColumns


@dataclass
class _Written:
    """What this recorder has written of one run: its steps, their totals, the head."""

    steps: int = 0
    head_status: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0


class StoreRecorder:
    """Writes runs to the ``flow_runs`` tables of ``store``."""

    def __init__(self, store: FlowRunStore) -> None:
        self.store = store
        self._runs: dict[str, _Written] = {}

    async def save(self, run: FlowRun) -> None:
        written = self._runs.get(run.run_id)
        if written is None or written.steps > len(run.history):
            written = self._runs[run.run_id] = _Written()
        new: list[tuple[int, dict[str, Any]]] = []
        for position in range(written.steps, len(run.history)):
            step = run.history[position]
            new.append((position, step.to_json()))
            written.input_tokens += step.usage.input_tokens
            written.output_tokens += step.usage.output_tokens
            written.cost_micros += step.cost_micros
        written.steps = len(run.history)
        going_on = run.status == "running" and written.head_status == "running"
        if going_on and new:  # the step rows alone: the last says where the run stands
            new[-1][1][AFTER] = {
                "status": "running",
                "current": run.current,
                "variables": run.variables,
                "visits": run.visits,
                "paused": None,
                "interruptions": [],
                "error": None,
                "reason": None,
            }
            steps = [(position, _json(data)) for position, data in new]
            await self.store.put(run.run_id, run.tenant, run.flow, steps)
            return
        paused = run.paused
        columns = RunColumns(
            status=run.status,
            current_state=run.current,
            error=run.error,
            steps=len(run.history),
            input_tokens=written.input_tokens + (paused.usage.input_tokens if paused else 0),
            output_tokens=written.output_tokens + (paused.usage.output_tokens if paused else 0),
            cost_micros=written.cost_micros + (paused.cost_micros if paused else 0),
        )
        steps = [(position, _json(data)) for position, data in new]  # all, when resumed
        head = _json(run.head_json())
        await self.store.put(run.run_id, run.tenant, run.flow, steps, (head, columns))
        written.head_status = run.status


def _json(data: Any) -> str:
    return to_json(data).decode()  # pydantic's serializer: a quarter of json.dumps' time
