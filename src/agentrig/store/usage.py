"""The usage ledger in the database, and the usage report.

Rows are written by one background task in batches rather than one transaction per
model call: a commit per call would add a millisecond or more to every call, the
router's overhead budget. Pending rows count in ``spent_micros`` at once, so budgets see
them; ``flush()`` or ``aclose()`` writes them. A process killed hard loses at most the
last ``flush_interval`` of rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import case, func, insert, select

from agentrig.store.db import Database
from agentrig.store.models import UsageRow
from agentrig.usage import UsageRecord

log = logging.getLogger(__name__)


class SQLUsageLedger:
    """A :class:`~agentrig.llm.ledger.UsageLedger` over the ``llm_usage`` table."""

    def __init__(
        self, database: Database, *, flush_interval: float = 0.25, batch_size: int = 500
    ) -> None:
        self.database = database
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._pending: list[UsageRecord] = []
        self._writing: list[UsageRecord] = []
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    async def record(self, record: UsageRecord) -> None:
        self._pending.append(record)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="agentrig-usage")
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    async def spent_micros(self, role: str, since: datetime) -> int:
        async with self.database.session() as session:
            written = await session.scalar(
                select(func.coalesce(func.sum(UsageRow.cost_micros), 0)).where(
                    UsageRow.role == role, UsageRow.at >= since
                )
            )
        unwritten = sum(
            r.cost_micros
            for r in (*self._pending, *self._writing)
            if r.role == role and r.at >= since
        )
        return int(written or 0) + unwritten

    async def flush(self) -> None:
        """Write every pending row now."""
        async with self._write_lock:
            while self._pending:
                self._writing, self._pending = self._pending, []
                try:
                    async with self.database.session() as session:
                        await session.execute(
                            insert(UsageRow), [_row(record) for record in self._writing]
                        )
                        await session.commit()
                except BaseException:
                    self._pending[:0] = self._writing
                    raise
                finally:
                    self._writing = []

    async def _write_forever(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("could not write %d usage rows; will retry", len(self._pending))

    async def aclose(self) -> None:
        """Stop the writer between two batches (never in the middle of one) and write the rest."""
        self._closing = True
        self._wake.set()
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer
        await self.flush()
        self._closing = False


@dataclass(frozen=True)
class UsageSummaryRow:
    role: str
    provider: str
    model: str
    calls: int
    failures: int
    input_tokens: int
    output_tokens: int
    cost_micros: int


async def usage_summary(database: Database, since: datetime | None = None) -> list[UsageSummaryRow]:
    """Calls, tokens and cost per role and model, since ``since`` (all time if ``None``)."""
    failed = func.sum(case((UsageRow.outcome != "ok", 1), else_=0))
    query = select(
        UsageRow.role,
        UsageRow.provider,
        UsageRow.model,
        func.count(),
        failed,
        func.sum(UsageRow.input_tokens),
        func.sum(UsageRow.output_tokens),
        func.sum(UsageRow.cost_micros),
    ).group_by(UsageRow.role, UsageRow.provider, UsageRow.model)
    if since is not None:
        query = query.where(UsageRow.at >= since)
    async with database.session() as session:
        rows = (await session.execute(query.order_by(UsageRow.role, UsageRow.model))).all()
    return [UsageSummaryRow(*(row[:3]), *(int(value or 0) for value in row[3:])) for row in rows]


_COLUMNS = tuple(field.name for field in fields(UsageRecord))


def _row(record: UsageRecord) -> dict[str, object]:
    """The record's columns (``dataclasses.asdict`` deep-copies, several times slower)."""
    return {name: getattr(record, name) for name in _COLUMNS}
