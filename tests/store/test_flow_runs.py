"""The flow_runs tables: a head row and a row per step, put back together on every
database, and a SQLite write that does not wait when another writer holds the lock."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime

from agentrig.store import Database
from agentrig.store.flow_runs import AFTER, FlowRunStore, RunColumns


def head(status: str, current: str) -> str:
    return json.dumps({"run_id": "frun_1", "status": status, "current": current, "paused": None})


def step(state: str, after: dict | None = None) -> str:
    data = {"state": state, "usage": {"input_tokens": 2, "output_tokens": 1}, "cost_micros": 5,
            "finished_at": datetime.now(UTC).isoformat()}  # fmt: skip
    return json.dumps({**data, AFTER: after} if after else data)


async def test_steps_written_alone_say_where_the_run_stands(database):
    store = FlowRunStore(database)
    before = datetime.now(UTC)
    start = (head("running", "a"), RunColumns("running", "a", None, 0, 0, 0, 0))
    await store.put("frun_1", "t1", "f", [], start)
    first = await store.get("frun_1", "t1")
    assert (first.status, first.current_state, first.steps, first.data["history"]) == (
        "running", "a", 0, []
    )  # fmt: skip
    assert first.created_at >= before.replace(microsecond=0) and first.finished_at is None
    await asyncio.sleep(0.01)
    after = {"status": "running", "current": "c", "variables": {"n": 2}}
    await store.put("frun_1", "t1", "f", [(0, step("a")), (1, step("b", after))])
    going = await store.get("frun_1", "t1")
    assert going.current_state == "c" and going.data["variables"] == {"n": 2}
    assert [s["state"] for s in going.data["history"]] == ["a", "b"]
    assert AFTER not in going.data["history"][1]
    assert (going.steps, going.input_tokens, going.cost_micros) == (2, 4, 10)
    assert going.updated_at > first.updated_at
    end = (head("completed", "end"), RunColumns("completed", "end", "a\x00b", 3, 6, 3, 15))
    await store.put("frun_1", "t1", "f", [(1, step("changed")), (2, step("c"))], end)
    done = await store.get("frun_1", "t1")
    assert [s["state"] for s in done.data["history"]] == ["a", "b", "c"]  # a step is kept
    assert (done.status, done.current_state, done.steps) == ("completed", "end", 3)
    assert done.created_at == first.created_at and done.finished_at is not None
    [listed] = await store.list("t1", status="completed")
    assert listed.data == done.data
    assert await store.get("frun_1", "t2") is None


async def test_whole_records_are_split_and_changed_under_the_rows_lock(database):
    store = FlowRunStore(database)
    record = {"run_id": "frun_2", "flow": "f", "tenant": "t", "status": "paused",
              "current": "b", "error": None, "paused": {"usage": {"input_tokens": 1}},
              "history": [json.loads(step("a"))]}  # fmt: skip
    await store.create(record, status="queued")
    stored = await store.get("frun_2")
    assert stored.status == "queued" and stored.data["history"][0]["state"] == "a"
    assert stored.input_tokens == 3

    def decide(run):
        return {**run.data, "history": [*run.data["history"], json.loads(step("b"))]}, "queued"

    changed = await store.change("frun_2", "t", decide)
    assert [s["state"] for s in changed.data["history"]] == ["a", "b"]
    assert not await store.save({**record, "status": "running"}, only_if=("running",))
    assert await store.save({**record, "status": "running"}, only_if=("queued",))
    assert [s["state"] for s in (await store.get("frun_2")).data["history"]] == ["a", "b"]


async def test_write_now_does_not_wait_for_another_writer_and_put_still_writes(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'runs.db'}")
    await database.upgrade()
    store = FlowRunStore(database)
    try:
        assert database.write_now([("UPDATE flow_runs SET steps = 1", ())]) == 0
        other = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        assert database.write_now([("UPDATE flow_runs SET steps = 1", ())]) is None
        start = (head("running", "a"), RunColumns("running", "a", None, 0, 0, 0, 0))
        put = asyncio.ensure_future(store.put("frun_3", "t", "f", [(0, step("a"))], start))
        await asyncio.sleep(0.2)
        assert not put.done()  # waiting in the writer thread, not in the event loop
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(put, 10)
        assert (await store.get("frun_3")).data["history"][0]["state"] == "a"
    finally:
        await database.aclose()
    memory = Database("sqlite+aiosqlite:///:memory:")
    assert memory.write_now([("SELECT 1", ())]) is None  # not a file: use write()
    await memory.aclose()
