"""Where the router writes usage records and reads back what a role has spent.

The router only needs two operations, so the ledger is a protocol: the database-backed
one lives in ``agentrig.store.usage`` (the LLM layer does not depend on the store), and
:class:`InMemoryLedger` serves tests and embedded uses that need no history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from agentrig.usage import UsageRecord


class UsageLedger(Protocol):
    async def record(self, record: UsageRecord) -> None:
        """Keep one usage record (it may be written in the background)."""

    async def spent_micros(self, role: str, since: datetime) -> int:
        """Total cost of ``role``'s calls at or after ``since``, unwritten records included."""

    async def aclose(self) -> None:
        """Write what is pending and release resources."""


class InMemoryLedger:
    """A ledger in a list: fast, exact, and forgotten when the process ends."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def spent_micros(self, role: str, since: datetime) -> int:
        return sum(r.cost_micros for r in self.records if r.role == role and r.at >= since)

    async def aclose(self) -> None:
        return None

    def rows(self, role: str | None = None) -> Sequence[UsageRecord]:
        return [r for r in self.records if role is None or r.role == role]
