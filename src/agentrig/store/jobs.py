"""Job rows: the record of truth of background work, whichever queue carries it.

A job is ``queued`` until a worker claims it; claiming makes it ``running`` with a lease
(``lease_until``) that the worker extends while it works (:meth:`JobStore.heartbeat`). A
worker that dies (even by SIGKILL) stops extending it, and once the lease has passed
another worker claims the job again: nothing is lost. Every change after the claim names
the worker and its attempt, so a worker that comes back after its job was taken over
cannot overwrite the new owner's outcome (fencing). A failed attempt is retried after a
delay until ``max_attempts``, then the job is ``failed`` with its error.

Claiming is an ``UPDATE … RETURNING`` over the first claimable row, in the order of the
(status, run_after) index; on PostgreSQL the row is chosen ``FOR UPDATE SKIP LOCKED``, so
concurrent workers never claim the same job.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Update, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from agentrig.items import new_id
from agentrig.store.db import Database
from agentrig.store.models import JobRow

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
FINISHED = (SUCCEEDED, FAILED)


@dataclass(frozen=True)
class Job:
    """A job as stored; ``payload`` and ``result`` are JSON values."""

    id: str
    type: str
    tenant: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    result: Any
    error: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def _job(row: Any) -> Job:
    return Job(
        id=row.id,
        type=row.type,
        tenant=row.tenant,
        payload=json.loads(row.payload),
        status=row.status,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        result=None if row.result is None else json.loads(row.result),
        error=row.error,
        worker=row.worker,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _now() -> datetime:
    return datetime.now(UTC)


# The statements of every job's path are built once, with bound parameters: building and
# compiling them per call cost a worker more CPU than SQLite's work (a job's success:
# 0.67-0.68 ms built per call, 0.33-0.43 prebuilt). An UPDATE without ``.values()`` sets
# the columns its parameters name.
_CHANGE = update(JobRow).where(
    JobRow.id == bindparam("job_id"),
    JobRow.status == RUNNING,
    JobRow.worker == bindparam("owner"),
    JobRow.attempts == bindparam("attempt"),
)


@functools.cache
def _claims(by_id: bool, by_type: bool, is_sqlite: bool) -> tuple[Update, Update]:
    """The claim of a job whose lease has passed, then of the queued job due longest.

    Each takes a range of the (status, run_after) index in index order: one statement
    ordered by ``created_at`` over both cases read and sorted every queued row. With
    4,000 jobs queued a claim took 2.4-2.7 ms of CPU that way, 0.63-0.75 ms now."""
    now = bindparam("now")
    claims = []
    for conditions, order in (
        ((JobRow.status == RUNNING, JobRow.lease_until < now), JobRow.lease_until),
        ((JobRow.status == QUEUED, JobRow.run_after <= now), JobRow.run_after),
    ):
        choice = select(JobRow.id).where(*conditions).order_by(order).limit(1)
        if by_id:
            choice = choice.where(JobRow.id == bindparam("wanted_id"))
        if by_type:
            choice = choice.where(JobRow.type.in_(bindparam("wanted_types", expanding=True)))
        if not is_sqlite:  # concurrent claimers skip each other's row
            choice = choice.with_for_update(skip_locked=True)
        claim = (
            update(JobRow)
            .where(JobRow.id == choice.scalar_subquery(), *conditions)
            .values(
                status=RUNNING,
                attempts=JobRow.attempts + 1,
                worker=bindparam("claimer"),
                lease_until=bindparam("lease"),
                started_at=now,
                updated_at=now,
            )
            .returning(*JobRow.__table__.columns)
        )
        claims.append(claim)
    return claims[0], claims[1]


class JobStore:
    """Enqueue, claim, heartbeat and finish job rows in a migrated :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def enqueue(
        self,
        type: str,
        tenant: str,
        payload: dict[str, Any],
        *,
        max_attempts: int = 5,
        job_id: str | None = None,
    ) -> Job:
        now = _now()
        row = {
            "id": job_id or new_id("job"),
            "type": type,
            "tenant": tenant,
            "payload": json.dumps(payload),
            "status": QUEUED,
            "attempts": 0,
            "max_attempts": max_attempts,
            "run_after": now,
            "created_at": now,
            "updated_at": now,
        }
        await self.database.write(lambda connection: connection.execute(insert(JobRow), row))
        unset = dict.fromkeys(("result", "error", "worker", "started_at", "finished_at"))
        return _job(SimpleNamespace(**row, **unset))  # as a read would give, without one

    async def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, ``None`` if there is none (or it is another ``tenant``'s)."""
        job = await self._get(job_id)
        return None if job is None or (tenant is not None and job.tenant != tenant) else job

    async def _get(self, job_id: str) -> Job | None:
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(select(JobRow).where(JobRow.id == job_id))).first()
        return None if row is None else _job(row)

    async def claim(
        self,
        worker: str,
        *,
        lease_seconds: float,
        job_id: str | None = None,
        types: tuple[str, ...] | None = None,
    ) -> Job | None:
        """Take a claimable job (or the job ``job_id``): first a running job whose lease has
        passed (its worker died), else the queued job that has been due longest. ``None``
        when there is none."""
        now = _now()
        parameters = {
            "now": now,
            "lease": now + timedelta(seconds=lease_seconds),
            "claimer": worker,
            "wanted_id": job_id,
            "wanted_types": list(types or ()),
        }
        claims = _claims(job_id is not None, types is not None, self.database.is_sqlite)

        def take(connection: Connection) -> Any:
            for claim in claims:
                if (row := connection.execute(claim, parameters).first()) is not None:
                    return row
            return None

        row = await self.database.write(take)
        return None if row is None else _job(row)

    async def heartbeat(self, job: Job, worker: str, *, lease_seconds: float) -> bool:
        """Extend the lease; ``False`` if the job is no longer this worker's."""
        until = _now() + timedelta(seconds=lease_seconds)
        return await self._change(job, worker, lease_until=until)

    async def succeed(self, job: Job, worker: str, result: Any) -> bool:
        """Record the result; ``False`` if the job was taken over meanwhile."""
        return await self._change(
            job, worker, status=SUCCEEDED, result=json.dumps(result), error=None, finished=True
        )

    async def fail(self, job: Job, worker: str, error: str, *, retry_after: float | None) -> bool:
        """Record a failed attempt: queued again after ``retry_after`` seconds if attempts
        remain (and a delay is given), else failed for good."""
        if retry_after is not None and job.attempts < job.max_attempts:
            due = _now() + timedelta(seconds=retry_after)
            return await self._change(
                job, worker, status=QUEUED, error=error, run_after=due, lease_until=None
            )
        return await self._change(job, worker, status=FAILED, error=error, finished=True)

    async def _change(
        self, job: Job, worker: str, *, finished: bool = False, **values: Any
    ) -> bool:
        now = _now()
        values |= {"updated_at": now} | ({"finished_at": now} if finished else {})
        mine = {"job_id": job.id, "owner": worker, "attempt": job.attempts}
        changed = await self.database.write(
            lambda connection: connection.execute(_CHANGE, values | mine).rowcount
        )
        return changed == 1

    async def count(self, status: str | None = None) -> int:
        query = select(func.count()).select_from(JobRow)
        if status is not None:
            query = query.where(JobRow.status == status)
        async with self.database.engine.connect() as connection:
            return int(await connection.scalar(query) or 0)
