"""Per-role spending limits, monthly and weekly, and how they bend routing.

Below ``cheap_threshold`` (80%) of every limit a role routes normally; from there on it
prefers the cheapest entries of its chain; at 100% only zero-cost entries remain, and
:class:`~agentrig.errors.BudgetExceeded` is raised when the chain has none.

Written by hand because it is agentrig's own rule: concurrent calls must never overspend
by more than one call's cost. Each paid call reserves an upper estimate of its cost
before it starts; a call is admitted while ``spent + reserved + estimate`` fits the
limit, or alone when nothing else is in flight; otherwise it waits for calls in flight
to settle. Spend is cached per process and re-read from the ledger every
``budget_refresh_seconds`` so that several processes see each other's spending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum

from agentrig.config import BudgetConfig
from agentrig.errors import BudgetExceeded
from agentrig.llm.ledger import UsageLedger


class BudgetState(Enum):
    NORMAL = "normal"
    PREFER_CHEAP = "prefer_cheap"
    EXHAUSTED = "exhausted"


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def week_start(now: datetime) -> datetime:
    monday = now - timedelta(days=now.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class _Period:
    name: str
    limit_micros: int
    start: Callable[[datetime], datetime]
    since: datetime | None = None
    spent_micros: int = 0


@dataclass
class _RoleBudget:
    periods: list[_Period]
    reserved_micros: int = 0
    in_flight: int = 0
    loaded_at: float = float("-inf")
    added_micros: int = 0  # spend counted by this process since it started
    refreshing: asyncio.Task[None] | None = None
    settled: asyncio.Condition = field(default_factory=asyncio.Condition)


class Reservation:
    """A paid call's claim on its role's budget; settle it with the actual cost."""

    def __init__(self, guard: BudgetGuard | None, role: str, estimate_micros: int) -> None:
        self._guard = guard
        self.role = role
        self.estimate_micros = estimate_micros

    async def settle(self, cost_micros: int) -> None:
        """Replace the estimate by the actual cost (call once, also after a failure)."""
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard._settle(self, cost_micros)


NO_RESERVATION = Reservation(None, "", 0)


class BudgetGuard:
    """Tracks spend per role and admits paid calls within the configured limits."""

    def __init__(
        self,
        budgets: dict[str, BudgetConfig],
        ledger: UsageLedger,
        *,
        cheap_threshold: float = 0.8,
        refresh_seconds: float = 5.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ledger = ledger
        self._threshold = cheap_threshold
        self._refresh_seconds = refresh_seconds
        self._now = now
        self._roles: dict[str, _RoleBudget] = {}
        for role, config in budgets.items():
            periods = []
            if config.monthly_usd is not None:
                periods.append(_Period("monthly", _micros(config.monthly_usd), month_start))
            if config.weekly_usd is not None:
                periods.append(_Period("weekly", _micros(config.weekly_usd), week_start))
            if periods:
                self._roles[role] = _RoleBudget(periods)

    def has_budget(self, role: str) -> bool:
        return role in self._roles

    async def state(self, role: str) -> BudgetState:
        """The role's state from what it has spent (reservations not counted)."""
        budget = self._roles.get(role)
        if budget is None:
            return BudgetState.NORMAL
        await self._refresh(role, budget)
        ratio = max(p.spent_micros / p.limit_micros for p in budget.periods)
        if ratio >= 1:
            return BudgetState.EXHAUSTED
        if ratio >= self._threshold:
            return BudgetState.PREFER_CHEAP
        return BudgetState.NORMAL

    def exceeded(self, role: str) -> BudgetExceeded:
        budget = self._roles[role]
        period = max(budget.periods, key=lambda p: p.spent_micros / p.limit_micros)
        return BudgetExceeded(role, period.name, period.spent_micros, period.limit_micros)

    async def reserve(self, role: str, estimate_micros: int) -> Reservation | None:
        """Admit a paid call of ``role``; ``None`` when the budget is spent meanwhile."""
        budget = self._roles.get(role)
        if budget is None:
            return NO_RESERVATION
        async with budget.settled:
            while True:
                await self._refresh(role, budget)
                headroom = min(p.limit_micros - p.spent_micros for p in budget.periods)
                if headroom <= 0:
                    return None
                if budget.in_flight == 0 or budget.reserved_micros + estimate_micros <= headroom:
                    budget.in_flight += 1
                    budget.reserved_micros += estimate_micros
                    return Reservation(self, role, estimate_micros)
                await budget.settled.wait()

    async def _settle(self, reservation: Reservation, cost_micros: int) -> None:
        budget = self._roles[reservation.role]
        async with budget.settled:
            budget.in_flight -= 1
            budget.reserved_micros -= reservation.estimate_micros
            self.add_spend(reservation.role, cost_micros)
            budget.settled.notify_all()

    def add_spend(self, role: str, cost_micros: int) -> None:
        """Count spend this process has just made (its ledger rows may not be written yet)."""
        budget = self._roles.get(role)
        if budget is None:
            return
        budget.added_micros += cost_micros
        for period in budget.periods:
            period.spent_micros += cost_micros

    async def _refresh(self, role: str, budget: _RoleBudget) -> None:
        """Re-read spend from the ledger: at once when a period starts or on first use,
        else in the background every ``refresh_seconds`` so that no call waits for it."""
        now = self._now()
        if any(p.since != p.start(now) for p in budget.periods):
            await self._load(role, budget, now)
        elif time.monotonic() - budget.loaded_at >= self._refresh_seconds and (
            budget.refreshing is None or budget.refreshing.done()
        ):
            budget.loaded_at = time.monotonic()
            budget.refreshing = asyncio.create_task(self._load(role, budget, now))

    async def _load(self, role: str, budget: _RoleBudget, now: datetime) -> None:
        added_before = budget.added_micros
        totals = []
        for period in budget.periods:
            totals.append(await self._ledger.spent_micros(role, period.start(now)))
        # Spend settled while the ledger was read may be missing from it: count it again
        # rather than lose it (an overcount lasts one refresh; an undercount could overspend).
        late = budget.added_micros - added_before
        for period, total in zip(budget.periods, totals, strict=True):
            period.since = period.start(now)
            period.spent_micros = total + late
        budget.loaded_at = time.monotonic()


def _micros(usd: Decimal) -> int:
    return int(usd * 1_000_000)
