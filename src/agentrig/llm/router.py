"""The model router: the only way agentrig reaches a model.

``router.client("default")`` returns an :class:`~agentrig.llm.types.LLMClient` for a role
(an ordered fallback chain of ``provider/model`` entries from ``[llm.roles]``) or for one
``provider/model``. Every call through it:

1. plans its chain: entries of cooling-down providers go last; under budget pressure the
   cheapest entries go first, and once the budget is spent only zero-cost entries remain;
2. reserves an upper estimate of its cost against the role's budget;
3. tries each entry in turn, retrying retryable errors (rate limits, timeouts, outages)
   with exponential backoff and jitter and a time limit per attempt; a provider that
   keeps failing cools down for ``cooldown_seconds``; a stream falls back only before its
   first event has reached the caller;
4. prices the usage in micro-dollars and records one usage row per entry tried.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from agentrig.config import LLMSettings, Settings
from agentrig.errors import (
    AuthenticationFailed,
    ConfigError,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from agentrig.llm import providers
from agentrig.llm.budget import NO_RESERVATION, BudgetGuard, BudgetState, Reservation
from agentrig.llm.cost import FREE, Price, find_price
from agentrig.llm.ledger import InMemoryLedger, UsageLedger
from agentrig.llm.routed import RoutedClient, RoutedEmbedder
from agentrig.llm.types import (
    EmbeddingBackend,
    LLMClient,
)
from agentrig.usage import Usage, UsageRecord

T = TypeVar("T")


@dataclass
class Route:
    """One ``provider/model`` entry of a chain, its price, and its lazily made client."""

    provider: str
    model: str
    price: Price
    make_client: Callable[[], Any]
    _client: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.make_client()
        return self._client

    @property
    def rank(self) -> float:
        """How dear the route is, for preferring the cheapest under budget pressure."""
        if self.price.tiered is not None:
            tiered = self.price.tiered
            parts = (tiered.input_mtok, tiered.output_mtok)
            return float(sum(getattr(p, "base", p) or 0 for p in parts))
        return float(self.price.input + self.price.output)


_COOLING_ERRORS = (RateLimited, Timeout, ProviderUnavailable, AuthenticationFailed)


def _failure(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


class ModelRouter:
    """Routes model calls by role through fallback chains, with retries, cost and budgets."""

    def __init__(
        self,
        settings: LLMSettings | None = None,
        *,
        ledger: UsageLedger | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings or LLMSettings()
        self.ledger: UsageLedger = ledger or InMemoryLedger()
        self.budget = BudgetGuard(
            self.settings.budgets,
            self.ledger,
            cheap_threshold=self.settings.cheap_threshold,
            refresh_seconds=self.settings.budget_refresh_seconds,
            now=now,
        )
        self._now = now
        self._routes: dict[str, Route] = {}
        self._embed_routes: dict[str, Route] = {}
        self._cooling_until: dict[str, float] = {}
        self._clients: dict[str, RoutedClient] = {}
        self._embedders: dict[str, RoutedEmbedder] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, ledger: UsageLedger | None = None) -> ModelRouter:
        return cls(settings.llm, ledger=ledger)

    # --- configuration -----------------------------------------------------------

    def register(
        self,
        name: str,
        client: LLMClient | EmbeddingBackend,
        *,
        price: Price = FREE,
    ) -> None:
        """Serve ``client`` (any LLMClient or embedding backend) as ``provider/model``."""
        provider, _, model = name.partition("/")
        if not model:
            raise ConfigError(f"register({name!r}): expected a 'provider/model' name")
        route = Route(provider, model, price, lambda: client, client)
        table = self._embed_routes if hasattr(client, "embed_batch") else self._routes
        table[name] = route
        self._clients.clear()
        self._embedders.clear()

    def add_role(self, role: str, chain: Sequence[str], *, embed: bool = False) -> None:
        """Define (or redefine) ``role`` as the fallback chain ``chain`` of known models."""
        for name in chain:
            self._route(name, embed=embed)  # fails now, naming the entry, if unknown
        self.settings.roles[role] = list(chain)
        self._clients.pop(role, None)
        self._embedders.pop(role, None)

    def chain(self, role_or_model: str, *, embed: bool = False) -> list[Route]:
        """The routes of a role's chain, or the single route of a ``provider/model``."""
        roles = self.settings.roles
        names = roles.get(role_or_model)
        if names is None:
            if "/" not in role_or_model:
                raise ConfigError(
                    f"unknown role or model {role_or_model!r}: expected one of the roles "
                    f"{sorted(roles)} or 'provider/model'"
                )
            names = [role_or_model]
        return [self._route(name, embed=embed) for name in names]

    def _route(self, name: str, *, embed: bool) -> Route:
        table = self._embed_routes if embed else self._routes
        route = table.get(name)
        if route is not None:
            return route
        provider, _, model = name.partition("/")
        config = self.settings.providers.get(provider)
        if config is None:
            raise ConfigError(
                f"unknown provider {provider!r} in {name!r}: expected one of "
                f"{sorted(self.settings.providers)}"
            )
        make = providers.create_embedder if embed else providers.create_client
        price = find_price(config.kind, model, config.models.get(model))
        route = Route(provider, model, price, lambda: make(provider, config, model))
        table[name] = route
        return route

    def client(self, role_or_model: str = "default") -> RoutedClient:
        """The chat client of a role (``default``, ``fast``…) or of a ``provider/model``."""
        client = self._clients.get(role_or_model)
        if client is None:
            client = RoutedClient(self, role_or_model, self.chain(role_or_model))
            self._clients[role_or_model] = client
        return client

    def embedder(self, role_or_model: str = "embed") -> RoutedEmbedder:
        """The embedder of a role (``embed`` by default) or of a ``provider/model``."""
        embedder = self._embedders.get(role_or_model)
        if embedder is None:
            chain = self.chain(role_or_model, embed=True)
            embedder = RoutedEmbedder(self, role_or_model, chain)
            self._embedders[role_or_model] = embedder
        return embedder

    async def aclose(self) -> None:
        """Close the providers' connections, write pending usage rows, close the ledger."""
        for route in (*self._routes.values(), *self._embed_routes.values()):
            aclose = getattr(route._client, "aclose", None)
            if aclose is not None:
                await aclose()
        await self.ledger.aclose()

    # --- what every call does ----------------------------------------------------

    def is_cooling(self, provider: str) -> bool:
        until = self._cooling_until.get(provider)
        return until is not None and time.monotonic() < until

    async def plan(self, role: str, chain: Sequence[Route]) -> list[Route]:
        """The order in which a call of ``role`` tries its chain right now."""
        routes = list(chain)
        if self.budget.has_budget(role):
            state = await self.budget.state(role)
            if state is BudgetState.PREFER_CHEAP:
                routes.sort(key=lambda route: route.rank)
            elif state is BudgetState.EXHAUSTED:
                routes = [route for route in routes if route.price.is_free]
                if not routes:
                    raise self.budget.exceeded(role)
        if len(routes) > 1 and self._cooling_until:
            routes.sort(key=lambda route: self.is_cooling(route.provider))
        return routes

    async def reserve(
        self, role: str, route: Route, input_tokens: int, output_tokens: int
    ) -> Reservation | None:
        """Admit a call to ``route`` under ``role``'s budget; ``None`` if it is spent."""
        if route.price.is_free or not self.budget.has_budget(role):
            return NO_RESERVATION
        estimate = route.price.estimate_micros(input_tokens, output_tokens)
        return await self.budget.reserve(role, estimate)

    async def attempt(self, route: Route, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` against ``route`` with the time limit and retry policy.

        The first attempt runs bare; only after a retryable failure do the others run
        under tenacity (its machinery costs about 50 µs a call, most calls succeed).
        """
        settings = self.settings
        try:
            try:
                return await self._timed(route, operation)
            except LLMError as exc:
                if not exc.retryable or settings.max_attempts <= 1:
                    raise
                await asyncio.sleep(self._delay(1, exc))
            retrying = AsyncRetrying(
                stop=stop_after_attempt(settings.max_attempts - 1),
                wait=lambda state: self._delay(state.attempt_number + 1, _failure(state)),
                retry=retry_if_exception(lambda exc: isinstance(exc, LLMError) and exc.retryable),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    return await self._timed(route, operation)
        except _COOLING_ERRORS:
            self._cooling_until[route.provider] = time.monotonic() + settings.cooldown_seconds
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _timed(self, route: Route, operation: Callable[[], Awaitable[T]]) -> T:
        limit = self.settings.attempt_timeout
        try:
            async with asyncio.timeout(limit):
                return await operation()
        except TimeoutError:
            raise Timeout(
                f"no answer within {limit:g} s", provider=route.provider, model=route.model
            ) from None

    def _delay(self, failed_attempt: int, exc: BaseException | None) -> float:
        """The wait after attempt number ``failed_attempt`` failed with ``exc``."""
        settings = self.settings
        exponential = settings.backoff_initial * 2 ** (failed_attempt - 1)
        delay = min(settings.backoff_max, exponential) * (0.5 + random.random())
        if isinstance(exc, RateLimited) and exc.retry_after:
            delay = max(delay, min(exc.retry_after, settings.backoff_max))
        return delay

    async def record(
        self,
        role: str,
        route: Route,
        usage: Usage,
        started: float,
        outcome: str,
        *,
        kind: str = "chat",
    ) -> int:
        """Price ``usage`` and write its usage row; return the cost in micro-dollars."""
        cost = route.price.cost_micros(usage) if usage.total_tokens else 0
        await self.ledger.record(
            UsageRecord(
                at=self._now(),
                role=role,
                provider=route.provider,
                model=route.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                cost_micros=cost,
                latency_ms=(time.perf_counter() - started) * 1000,
                outcome=outcome,
                kind=kind,
            )
        )
        return cost


__all__ = ["ModelRouter", "Route", "RoutedClient", "RoutedEmbedder"]
