"""Flow runs: the durable record of a flow, written at every step boundary.

A row keeps the run's record (the JSON of a ``FlowRun``: the state to run next, the
variables, the finished steps, a paused step) and, as columns to list and filter on, its
status, current state, steps and totals. :meth:`FlowRunStore.save` is one ``UPDATE`` per
step; it names the statuses it may start from (``only_if``), so a worker finishing a run
that a reviewer meanwhile resumed elsewhere changes nothing. The row's status may say more
than the record's: ``queued`` (a job is to drive the record) exists in the row only.
:meth:`FlowRunStore.change` reads and writes a run in one transaction holding its row, for
decisions two reviewers may take at once. Reads filter on the tenant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from agentrig.store.db import Database
from agentrig.store.models import FlowRunRow

ENDED = ("completed", "failed")


@dataclass(frozen=True)
class StoredFlowRun:
    """A run as stored; ``data`` is the ``FlowRun`` JSON."""

    id: str
    tenant: str
    flow: str
    status: str
    current_state: str | None
    data: dict[str, Any]
    error: str | None
    job_id: str | None
    steps: int
    input_tokens: int
    output_tokens: int
    cost_micros: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _stored(row: Any) -> StoredFlowRun:
    return StoredFlowRun(
        id=row.id,
        tenant=row.tenant,
        flow=row.flow,
        status=row.status,
        current_state=row.current_state,
        data=json.loads(row.data),
        error=row.error,
        job_id=row.job_id,
        steps=row.steps,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_micros=row.cost_micros,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    """The columns a ``FlowRun`` record sets: status, current state, steps and totals."""
    history = data.get("history", [])
    paused = data.get("paused") or {}
    usages = [step.get("usage", {}) for step in history] + [paused.get("usage", {})]
    now = datetime.now(UTC)
    return {
        "status": data["status"],
        "current_state": data.get("current"),
        "data": json.dumps(data),
        "error": _text(data.get("error")),
        "steps": len(history),
        "input_tokens": sum(u.get("input_tokens", 0) for u in usages),
        "output_tokens": sum(u.get("output_tokens", 0) for u in usages),
        "cost_micros": sum(s.get("cost_micros", 0) for s in history) + paused.get("cost_micros", 0),
        "updated_at": now,
        "finished_at": now if data["status"] in ENDED else None,
    }


def _text(value: str | None) -> str | None:
    """A column's text without NUL, which PostgreSQL text cannot hold (the record's JSON
    keeps the exact text, escaped)."""
    return None if value is None else value.replace("\x00", "\\x00")


class FlowRunStore:
    """Create, read and move flow runs in a migrated :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, data: dict[str, Any], *, status: str | None = None) -> None:
        """A new run from its ``FlowRun`` record (its ``run_id``, ``tenant``, ``flow``);
        ``status`` is the row's, if not the record's (``queued``)."""
        row = {
            "id": data["run_id"],
            "tenant": data.get("tenant", "default"),
            "flow": data["flow"],
            "job_id": None,
            "created_at": datetime.now(UTC),
            **_columns(data),
        }
        if status is not None:
            row["status"] = status
        await self.database.write(lambda connection: connection.execute(insert(FlowRunRow), row))

    async def save(self, data: dict[str, Any], *, only_if: Sequence[str] | None = None) -> bool:
        """Write the run's record; with ``only_if``, only if its stored status is one of
        them (``False`` if it was not: it moved on meanwhile, or is gone)."""
        statement = update(FlowRunRow).where(FlowRunRow.id == data["run_id"])
        if only_if is not None:
            statement = statement.where(FlowRunRow.status.in_(list(only_if)))
        statement = statement.values(_columns(data))
        changed = await self.database.write(
            lambda connection: connection.execute(statement).rowcount
        )
        return changed == 1

    async def change(
        self,
        run_id: str,
        tenant: str,
        change: Callable[[StoredFlowRun], tuple[dict[str, Any], str]],
    ) -> StoredFlowRun | None:
        """Write what ``change`` makes of the stored run (its new record, and the row's
        status) in one transaction holding the row (``FOR UPDATE`` on PostgreSQL; a SQLite
        write transaction holds the whole database), so two changes of one run never
        interleave: the second sees the first's record. ``None`` if there is no such run;
        an exception raised by ``change`` writes nothing."""
        query = select(FlowRunRow).where(FlowRunRow.id == run_id, FlowRunRow.tenant == tenant)

        def work(connection: Any) -> StoredFlowRun | None:
            row = connection.execute(query.with_for_update()).first()
            if row is None:
                return None
            data, status = change(_stored(row))
            values = {**_columns(data), "status": status}
            connection.execute(update(FlowRunRow).where(FlowRunRow.id == run_id).values(values))
            return _stored(connection.execute(query).first())

        return await self.database.write(work)

    async def get(self, run_id: str, tenant: str | None = None) -> StoredFlowRun | None:
        """The run, ``None`` if there is none (or it is another ``tenant``'s)."""
        query = select(FlowRunRow).where(FlowRunRow.id == run_id)
        if tenant is not None:
            query = query.where(FlowRunRow.tenant == tenant)
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _stored(row)

    async def list(
        self,
        tenant: str,
        *,
        flow: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[StoredFlowRun]:
        """The tenant's newest runs first (of ``flow``, in ``status``, if given)."""
        query = select(FlowRunRow).where(FlowRunRow.tenant == tenant)
        if flow is not None:
            query = query.where(FlowRunRow.flow == flow)
        if status is not None:
            query = query.where(FlowRunRow.status == status)
        query = query.order_by(FlowRunRow.created_at.desc(), FlowRunRow.id.desc()).limit(limit)
        async with self.database.engine.connect() as connection:
            return [_stored(row) for row in await connection.execute(query)]

    async def set_job(self, run_id: str, job_id: str) -> None:
        """Record the job that runs the run."""
        statement = update(FlowRunRow).where(FlowRunRow.id == run_id).values(job_id=job_id)
        await self.database.write(lambda connection: connection.execute(statement))
