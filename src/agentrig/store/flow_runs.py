"""Flow runs: the durable record of a flow, written at every step boundary.

A run is a head row in ``flow_runs`` (the ``FlowRun`` record without its history, and as
columns its status, current state and totals) and one row per finished step in
``flow_run_steps``. A step's row also carries where the run stands after it (the next
state, the variables, the visits), so the write of a step boundary while the run goes on
is one small ``INSERT``, the same size at the hundredth step as at the first; the head is
written when the run starts, pauses or ends. Reading a run puts the two back together:
:class:`StoredFlowRun` has the whole record.

Writes that may race name what they start from: :meth:`FlowRunStore.save` the statuses
(``only_if``), :meth:`FlowRunStore.change` holds the head row while it reads and writes.
The row's status may say more than the record's: ``queued`` (a job is to drive the
record) exists in the row only. Step rows are never rewritten (a position written twice
keeps the first). Reads filter on the tenant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from agentrig.store.db import Database
from agentrig.store.models import FlowRunRow, FlowRunStepRow

ENDED = ("completed", "failed")
AFTER = "after"  # the key of a step row's "where the run stands after this step"


@dataclass(frozen=True)
class StoredFlowRun:
    """A run as stored; ``data`` is the whole ``FlowRun`` JSON, history included."""

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


@dataclass(frozen=True, slots=True)
class RunColumns:
    """The head row's columns besides the record (see :meth:`FlowRunStore.put`)."""

    status: str
    current_state: str | None
    error: str | None
    steps: int
    input_tokens: int
    output_tokens: int
    cost_micros: int


def _assemble(row: Any, steps: Sequence[str]) -> StoredFlowRun:
    """The head row and the run's step rows (in order) as one record."""
    data = json.loads(row.data)
    history = [json.loads(text) for text in steps]
    status, updated_at = row.status, row.updated_at
    if len(history) > row.steps and AFTER in history[-1]:  # steps newer than the head
        data.update(history[-1][AFTER])
        status = data["status"]
        updated_at = datetime.fromisoformat(history[-1]["finished_at"])
    for step in history:
        step.pop(AFTER, None)
    data["history"] = history
    input_tokens, output_tokens, cost_micros = _totals(data, history)
    return StoredFlowRun(
        id=row.id,
        tenant=row.tenant,
        flow=row.flow,
        status=status,
        current_state=data.get("current"),
        data=data,
        error=data.get("error"),
        job_id=row.job_id,
        steps=len(history),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_micros=cost_micros,
        created_at=row.created_at,
        updated_at=updated_at,
        finished_at=row.finished_at,
    )


def _totals(data: dict[str, Any], history: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Input tokens, output tokens and cost of a record's steps and its paused step."""
    parts = [*history, data.get("paused") or {}]
    usages = [part.get("usage") or {} for part in parts]
    return (
        sum(u.get("input_tokens", 0) for u in usages),
        sum(u.get("output_tokens", 0) for u in usages),
        sum(part.get("cost_micros", 0) for part in parts),
    )


def _split(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    """A whole record as the head row's values and its step rows."""
    history = data.get("history", [])
    head = {key: value for key, value in data.items() if key != "history"}
    input_tokens, output_tokens, cost_micros = _totals(data, history)
    now = datetime.now(UTC)
    values = {
        "status": data["status"],
        "current_state": data.get("current"),
        "data": json.dumps(head),
        "error": _text(data.get("error")),
        "steps": len(history),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_micros": cost_micros,
        "updated_at": now,
        "finished_at": now if data["status"] in ENDED else None,
    }
    return values, [(position, json.dumps(step)) for position, step in enumerate(history)]


def _text(value: str | None) -> str | None:
    """A column's text without NUL, which PostgreSQL text cannot hold (the record's JSON
    keeps the exact text, escaped)."""
    return None if value is None else value.replace("\x00", "\\x00")


_HEAD = (
    "id", "tenant", "flow", "status", "current_state", "data", "error", "steps",
    "input_tokens", "output_tokens", "cost_micros", "created_at", "updated_at", "finished_at",
)  # fmt: skip
_UPDATED = [c for c in _HEAD if c not in ("id", "tenant", "flow", "created_at")]
_SQLITE_HEAD = (
    f"INSERT INTO flow_runs ({', '.join(_HEAD)}) VALUES ({', '.join('?' for _ in _HEAD)}) "
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _UPDATED)
)
_SQLITE_STEP = (
    "INSERT INTO flow_run_steps (run_id, position, data) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, position) DO NOTHING"
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime keeps it in SQLite


def _insert_steps(connection: Connection, run_id: str, steps: list[tuple[int, str]]) -> None:
    if not steps:
        return
    rows = [{"run_id": run_id, "position": p, "data": text} for p, text in steps]
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(FlowRunStepRow).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(FlowRunStepRow).on_conflict_do_nothing()
    connection.execute(statement, rows)


class FlowRunStore:
    """Create, read and move flow runs in a migrated :class:`Database`."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def put(
        self,
        run_id: str,
        tenant: str,
        flow: str,
        steps: Sequence[tuple[int, str]],
        head: tuple[str, RunColumns] | None = None,
    ) -> None:
        """The write of a step boundary, in one transaction: the new step rows
        (position, JSON) and, if given, the head (the record's text without history, and
        its columns), inserted or updated. On a SQLite file it is written at once
        (``Database.write_now``), else through ``Database.write``."""
        values: tuple[Any, ...] | None = None
        sqlite = self.database.is_sqlite
        if head is not None:
            text, columns = head
            now: Any = datetime.now(UTC).replace(tzinfo=None)
            if sqlite:
                now = now.strftime(_SQLITE_TIME)
            finished = now if columns.status in ENDED else None
            values = (
                run_id, tenant, flow, columns.status, columns.current_state, text,
                _text(columns.error), columns.steps, columns.input_tokens,
                columns.output_tokens, columns.cost_micros, now, now, finished,
            )  # fmt: skip
        if not sqlite:
            await self.database.write(lambda c: _put_postgres(c, run_id, list(steps), values))
            return
        statements: list[tuple[str, Sequence[Any]]] = [
            (_SQLITE_STEP, (run_id, position, text)) for position, text in steps
        ]
        if values is not None:
            statements.append((_SQLITE_HEAD, values))
        if self.database.write_now(statements) is None:
            await self.database.write(lambda c: [c.exec_driver_sql(*s) for s in statements])

    async def create(self, data: dict[str, Any], *, status: str | None = None) -> None:
        """A new run from its whole ``FlowRun`` record (its ``run_id``, ``tenant``,
        ``flow``); ``status`` is the row's, if not the record's (``queued``)."""
        values, steps = _split(data)
        row = {
            "id": data["run_id"],
            "tenant": data.get("tenant", "default"),
            "flow": data["flow"],
            "job_id": None,
            "created_at": datetime.now(UTC),
            **values,
        }
        if status is not None:
            row["status"] = status

        def work(connection: Connection) -> None:
            connection.execute(insert(FlowRunRow), row)
            _insert_steps(connection, data["run_id"], steps)

        await self.database.write(work)

    async def save(self, data: dict[str, Any], *, only_if: Sequence[str] | None = None) -> bool:
        """Write the run's whole record; with ``only_if``, only if its stored status is
        one of them (``False`` if it was not: it moved on meanwhile, or is gone)."""
        values, steps = _split(data)
        statement = update(FlowRunRow).where(FlowRunRow.id == data["run_id"])
        if only_if is not None:
            statement = statement.where(FlowRunRow.status.in_(list(only_if)))
        statement = statement.values(values)

        def work(connection: Connection) -> bool:
            if connection.execute(statement).rowcount != 1:
                return False
            _insert_steps(connection, data["run_id"], steps)
            return True

        return await self.database.write(work)

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

        def work(connection: Connection) -> StoredFlowRun | None:
            row = connection.execute(query.with_for_update()).first()
            if row is None:
                return None
            data, status = change(_assemble(row, _steps_of(connection, [run_id])[run_id]))
            values, steps = _split(data)
            values["status"] = status
            connection.execute(update(FlowRunRow).where(FlowRunRow.id == run_id).values(values))
            _insert_steps(connection, run_id, steps)
            fresh = connection.execute(query).first()
            return _assemble(fresh, _steps_of(connection, [run_id])[run_id])

        return await self.database.write(work)

    async def get(self, run_id: str, tenant: str | None = None) -> StoredFlowRun | None:
        """The run, ``None`` if there is none (or it is another ``tenant``'s)."""
        query = select(FlowRunRow).where(FlowRunRow.id == run_id)
        if tenant is not None:
            query = query.where(FlowRunRow.tenant == tenant)
        async with self.database.engine.connect() as connection:
            return await connection.run_sync(lambda c: _read(c, query))

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
            return await connection.run_sync(lambda c: _read_all(c, query))

    async def set_job(self, run_id: str, job_id: str) -> None:
        """Record the job that runs the run."""
        statement = update(FlowRunRow).where(FlowRunRow.id == run_id).values(job_id=job_id)
        await self.database.write(lambda connection: connection.execute(statement))


def _put_postgres(
    connection: Connection,
    run_id: str,
    steps: list[tuple[int, str]],
    head: tuple[Any, ...] | None,
) -> None:
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    _insert_steps(connection, run_id, steps)
    if head is not None:
        statement = pg_insert(FlowRunRow).values(dict(zip(_HEAD, head, strict=True)))
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={c: statement.excluded[c] for c in _UPDATED}
        )
        connection.execute(statement)


def _steps_of(connection: Connection, run_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    query = (
        select(FlowRunStepRow.run_id, FlowRunStepRow.data)
        .where(FlowRunStepRow.run_id.in_(list(run_ids)))
        .order_by(FlowRunStepRow.run_id, FlowRunStepRow.position)
    )
    for run_id, text in connection.execute(query):
        found[run_id].append(text)
    return found


def _read(connection: Connection, query: Any) -> StoredFlowRun | None:
    row = connection.execute(query).first()
    return None if row is None else _assemble(row, _steps_of(connection, [row.id])[row.id])


def _read_all(connection: Connection, query: Any) -> list[StoredFlowRun]:
    rows = list(connection.execute(query))
    steps = _steps_of(connection, [row.id for row in rows])
    return [_assemble(row, steps[row.id]) for row in rows]
