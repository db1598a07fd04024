"""The clients the router hands out: each walks its role's chain as the router plans it.

:class:`RoutedClient` is the chat client of a role, :class:`RoutedEmbedder` its embedder.
They try the planned routes in turn, reserve budget, retry and time out each attempt
through :meth:`ModelRouter.attempt`, and record what every route tried cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from agentrig.errors import BadRequest, ContextTooLong, LLMError, ProviderUnavailable, Timeout
from agentrig.llm.budget import Reservation
from agentrig.llm.cost import estimate_input_tokens
from agentrig.llm.types import (
    Completed,
    EmbeddingBackend,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
)
from agentrig.usage import Usage

if TYPE_CHECKING:
    from agentrig.llm.router import ModelRouter, Route

T = TypeVar("T")

# Reserved for a request that does not cap its output, when its role has a budget.
DEFAULT_OUTPUT_ESTIMATE = 4096


def _can_fall_back(exc: LLMError) -> bool:
    """A bad request fails the same way everywhere, unless it is only too long for one model."""
    return not isinstance(exc, BadRequest) or isinstance(exc, ContextTooLong)


class _Chain:
    """What a routed client and a routed embedder share: walking the planned chain."""

    def __init__(self, router: ModelRouter, role: str, chain: list[Route]) -> None:
        self.router = router
        self.role = role
        self.chain = chain

    @property
    def model(self) -> str:
        return self.role

    async def _routes(self) -> list[Route]:
        return await self.router.plan(self.role, self.chain)

    def _give_up(self, last_error: LLMError | None, budget_spent: bool) -> Exception:
        """The error to raise once every route of the chain was tried or skipped."""
        if last_error is not None:
            return last_error
        if budget_spent:
            return self.router.budget.exceeded(self.role)
        return ProviderUnavailable(f"role {self.role!r} has no usable model")


class RoutedClient(_Chain):
    """An :class:`~agentrig.llm.types.LLMClient` over a role's chain."""

    async def _first_success(
        self, request: ModelRequest, operation: Callable[[Route], Awaitable[T]]
    ) -> tuple[Route, Reservation, float, T]:
        """Walk the planned chain until ``operation`` succeeds on a route; return that route,
        its budget reservation, when the route was started and the result."""
        router = self.router
        has_budget = router.budget.has_budget(self.role)
        estimate_in = estimate_input_tokens(request) if has_budget else 0
        estimate_out = request.settings.max_output_tokens or DEFAULT_OUTPUT_ESTIMATE
        last_error: LLMError | None = None
        budget_spent = False
        for route in await self._routes():
            reservation = await router.reserve(self.role, route, estimate_in, estimate_out)
            if reservation is None:
                budget_spent = True
                continue
            started = time.perf_counter()
            try:
                result = await router.attempt(route, lambda r=route: operation(r))
            except LLMError as exc:
                await router.record(self.role, route, Usage(), started, type(exc).__name__)
                await reservation.settle(0)
                if not _can_fall_back(exc):
                    raise
                last_error = exc
                continue
            except BaseException:
                await reservation.settle(0)
                raise
            return route, reservation, started, result
        raise self._give_up(last_error, budget_spent)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        route, reservation, started, response = await self._first_success(
            request, lambda route: route.client.complete(request)
        )
        cost = await self.router.record(self.role, route, response.usage, started, "ok")
        await reservation.settle(cost)
        response.cost_micros = cost
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        route, reservation, started, (events, first) = await self._first_success(
            request, lambda route: _first_event(route.client.stream(request))
        )
        # From here on the caller has seen output: no more fallback.
        relay = self._relay(route, reservation, started, events, first)
        async with contextlib.aclosing(relay):
            async for event in relay:
                yield event

    async def _relay(
        self,
        route: Route,
        reservation: Reservation,
        started: float,
        events: AsyncIterator[ModelStreamEvent],
        event: ModelStreamEvent,
    ) -> AsyncIterator[ModelStreamEvent]:
        timeout = self.router.settings.attempt_timeout
        usage, outcome, cost = Usage(), "cancelled", 0
        try:
            while True:
                if isinstance(event, Completed):
                    usage, outcome = event.response.usage, "ok"
                    cost = await self.router.record(self.role, route, usage, started, outcome)
                    event.response.cost_micros = cost
                yield event
                try:
                    async with asyncio.timeout(timeout):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise Timeout(
                        f"stream idle for {timeout:g} s", provider=route.provider, model=route.model
                    ) from None
        except LLMError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if outcome != "ok":
                await self.router.record(self.role, route, usage, started, outcome)
            await reservation.settle(cost)
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


async def _first_event(
    events: AsyncIterator[ModelStreamEvent],
) -> tuple[AsyncIterator[ModelStreamEvent], ModelStreamEvent]:
    """Open a stream and wait for its first event, closing it if that fails."""
    try:
        return events, await anext(events)
    except StopAsyncIteration:
        raise ProviderUnavailable("stream ended before any event") from None
    except BaseException:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
        raise


class RoutedEmbedder(_Chain):
    """An :class:`~agentrig.llm.types.Embedder` over a role's chain.

    All vectors of one ``embed`` call come from one model: if an entry fails part way,
    the next entry embeds every text again, since vectors of two models do not mix."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        router = self.router
        texts = list(texts)
        if not texts:
            return []
        last_error: LLMError | None = None
        estimate_in = sum(len(text) for text in texts)
        budget_spent = False
        for route in await self._routes():
            reservation = await router.reserve(self.role, route, estimate_in, 0)
            if reservation is None:
                budget_spent = True
                continue
            backend: EmbeddingBackend = route.client
            vectors: list[list[float]] = []
            spent = 0
            try:
                for start in range(0, len(texts), backend.max_batch_size):
                    batch = texts[start : start + backend.max_batch_size]
                    started = time.perf_counter()
                    try:
                        response = await router.attempt(
                            route, lambda b=batch, e=backend: e.embed_batch(b)
                        )
                    except LLMError as exc:
                        await router.record(
                            self.role, route, Usage(), started, type(exc).__name__, kind="embed"
                        )
                        raise
                    spent += await router.record(
                        self.role, route, response.usage, started, "ok", kind="embed"
                    )
                    vectors.extend(response.vectors)
            except LLMError as exc:
                if not _can_fall_back(exc):
                    raise
                last_error = exc
                continue
            finally:
                await reservation.settle(spent)
            return vectors
        raise self._give_up(last_error, budget_spent)
