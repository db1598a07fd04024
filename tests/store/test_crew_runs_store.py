"""Crew run rows: tenant-scoped reads, and status changes that only happen from the
statuses they name, so two reviewers deciding one paused run cannot both win."""

from __future__ import annotations

import asyncio

from agentrig.store import Database
from agentrig.store.crew_runs import COMPLETED, PAUSED, QUEUED, RUNNING, CrewRunStore


async def test_a_change_happens_only_from_the_statuses_it_names(database: Database):
    runs = CrewRunStore(database)
    await runs.create("t1", "crun_1", "content", {"kind": "crew_state"}, status=PAUSED)
    assert await runs.get("crun_1", "t2") is None  # another tenant's
    decisions = await asyncio.gather(
        *(runs.update("crun_1", only_if=(PAUSED,), status=QUEUED, state={"n": n}) for n in (1, 2))
    )
    assert sorted(decisions) == [False, True]
    run = await runs.get("crun_1", "t1")
    assert run.status == QUEUED and run.state in ({"n": 1}, {"n": 2})
    assert not await runs.update("crun_1", only_if=(RUNNING,), status=COMPLETED)
    assert await runs.update(
        "crun_1", only_if=(QUEUED,), status=COMPLETED, result={"output": "x"}, totals=(3, 4, 5)
    )
    run = await runs.get("crun_1")
    assert (run.status, run.result, run.input_tokens, run.output_tokens, run.cost_micros) == (
        COMPLETED,
        {"output": "x"},
        3,
        4,
        5,
    )
    assert run.finished_at is not None and run.state in ({"n": 1}, {"n": 2})
    await runs.create("t1", "crun_2", "other", {}, status=QUEUED)
    assert [r.id for r in await runs.list("t1")] == ["crun_2", "crun_1"]
    assert [r.id for r in await runs.list("t1", crew="content")] == ["crun_1"]
    assert await runs.list("t2") == []
