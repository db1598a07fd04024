"""Crew runs: the stored record of a crew started through the API.

A run row keeps the crew's state (the JSON of a ``CrewState``: what to resume from), its
status and, once the crew has paused or ended, its result and totals. Every change names
the statuses it may start from (``only_if``), so two reviewers approving one paused run,
or a worker finishing a run that was meanwhile resumed, cannot overwrite each other: the
second change finds the status moved on and changes nothing. Reads filter on the tenant.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from agentrig.store.db import Database
from agentrig.store.models import CrewRunRow

QUEUED, RUNNING, PAUSED, COMPLETED, FAILED = "queued", "running", "paused", "completed", "failed"
ENDED = (COMPLETED, FAILED)


@dataclass(frozen=True)
class CrewRun:
    """A run as stored; ``state`` and ``result`` are JSON values."""

    id: str
    tenant: str
    crew: str
    status: str
    state: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    job_id: str | None
    input_tokens: int
    output_tokens: int
    cost_micros: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _run(row: Any) -> CrewRun:
    return CrewRun(
        id=row.id,
        tenant=row.tenant,
        crew=row.crew,
        status=row.status,
        state=json.loads(row.state),
        result=None if row.result is None else json.loads(row.result),
        error=row.error,
        job_id=row.job_id,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_micros=row.cost_micros,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class CrewRunStore:
    """Create, read and move crew runs in a migrated :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self,
        tenant: str,
        run_id: str,
        crew: str,
        state: dict[str, Any],
        *,
        status: str = QUEUED,
        result: dict[str, Any] | None = None,
        totals: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        """A new run (``totals``: input tokens, output tokens, cost in micro-dollars)."""
        now = _now()
        row = {
            "id": run_id,
            "tenant": tenant,
            "crew": crew,
            "status": status,
            "state": json.dumps(state),
            "result": None if result is None else json.dumps(result),
            "error": None,
            "job_id": None,
            "input_tokens": totals[0],
            "output_tokens": totals[1],
            "cost_micros": totals[2],
            "created_at": now,
            "updated_at": now,
            "finished_at": now if status in ENDED else None,
        }
        await self.database.write(lambda connection: connection.execute(insert(CrewRunRow), row))

    async def get(self, run_id: str, tenant: str | None = None) -> CrewRun | None:
        """The run, ``None`` if there is none (or it is another ``tenant``'s)."""
        query = select(CrewRunRow).where(CrewRunRow.id == run_id)
        if tenant is not None:
            query = query.where(CrewRunRow.tenant == tenant)
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _run(row)

    async def list(self, tenant: str, *, crew: str | None = None, limit: int = 20) -> list[CrewRun]:
        """The tenant's newest runs first (of ``crew`` if given)."""
        query = select(CrewRunRow).where(CrewRunRow.tenant == tenant)
        if crew is not None:
            query = query.where(CrewRunRow.crew == crew)
        query = query.order_by(CrewRunRow.created_at.desc(), CrewRunRow.id.desc()).limit(limit)
        async with self.database.engine.connect() as connection:
            return [_run(row) for row in await connection.execute(query)]

    async def set_job(self, run_id: str, job_id: str) -> None:
        """Record the job that runs the run, whatever its status (the job may have
        started it already)."""
        statement = update(CrewRunRow).where(CrewRunRow.id == run_id).values(job_id=job_id)
        await self.database.write(lambda connection: connection.execute(statement))

    async def update(
        self,
        run_id: str,
        *,
        only_if: Sequence[str],
        status: str,
        state: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        totals: tuple[int, int, int] | None = None,
    ) -> bool:
        """Move the run to ``status`` (with what is given) if its status is one of
        ``only_if``; ``False`` if it was not (it moved on meanwhile, or is gone)."""
        now = _now()
        values: dict[str, Any] = {"status": status, "updated_at": now, "error": error}
        if state is not None:
            values["state"] = json.dumps(state)
        if result is not None:
            values["result"] = json.dumps(result)
        if totals is not None:
            values["input_tokens"], values["output_tokens"], values["cost_micros"] = totals
        values["finished_at"] = now if status in ENDED else None
        statement = (
            update(CrewRunRow)
            .where(CrewRunRow.id == run_id, CrewRunRow.status.in_(list(only_if)))
            .values(values)
        )
        changed = await self.database.write(
            lambda connection: connection.execute(statement).rowcount
        )
        return changed == 1
