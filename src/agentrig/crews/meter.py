"""Metering a crew: every model call of every task counted, priced and bounded.

A crew's tasks run through :class:`MeteredRouter` (for agents whose model is a router role
or ``provider/model``) and :class:`MeteredClient` (for agents given an ``LLMClient``): both
wrap the client a call uses, so the router still does the routing, fallbacks, budgets and
usage rows, and the meter adds what only a crew knows: which task the call belongs to, the
crew's total turns (``max_turns``) and cost (``max_cost_usd``), checked before each call.
Written here because a crew is agentrig's own idea; nothing below knows about crews.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from agentrig.errors import AgentrigError
from agentrig.llm.types import Completed, LLMClient, ModelRequest, ModelResponse
from agentrig.usage import Usage


class CrewLimitReached(AgentrigError):
    """The crew spent its turns or its money; ``reason`` is ``turns`` or ``budget``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class CrewMeter:
    """The crew's totals and limits, shared by every task of one kickoff."""

    def __init__(self, *, max_turns: int, max_cost_micros: int | None) -> None:
        self.max_turns = max_turns
        self.max_cost_micros = max_cost_micros
        self.turns = 0
        self.usage = Usage()
        self.cost_micros = 0

    def admit(self) -> None:
        """Called before a model call: refuse it when the crew has spent its allowance."""
        if self.max_cost_micros is not None and self.cost_micros >= self.max_cost_micros:
            raise CrewLimitReached(
                f"the crew spent ${self.cost_micros / 1e6:.6f}, its max_cost_usd is "
                f"${self.max_cost_micros / 1e6:.6f}",
                "budget",
            )
        if self.turns >= self.max_turns:
            raise CrewLimitReached(
                f"the crew made {self.turns} model calls, its max_turns is {self.max_turns}",
                "turns",
            )
        self.turns += 1


class TaskMeter:
    """One task's share: what its calls cost, delegations and guardrail agents included."""

    def __init__(
        self, crew: CrewMeter, task: str, on_call: Callable[[TaskMeter, str, ModelResponse], None]
    ) -> None:
        self.crew = crew
        self.task = task
        self.usage = Usage()
        self.cost_micros = 0
        self._on_call = on_call

    def record(self, agent: str, response: ModelResponse) -> None:
        self.usage = self.usage + response.usage
        self.cost_micros += response.cost_micros
        self.crew.usage = self.crew.usage + response.usage
        self.crew.cost_micros += response.cost_micros
        self._on_call(self, agent, response)


class MeteredClient:
    """An ``LLMClient`` that reports each call of ``agent`` to a task's meter."""

    def __init__(self, inner: LLMClient, meter: TaskMeter, agent: str) -> None:
        self.inner = inner
        self.meter = meter
        self.agent = agent

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.meter.crew.admit()
        response = await self.inner.complete(request)
        self.meter.record(self.agent, response)
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        self.meter.crew.admit()
        async for event in self.inner.stream(request):
            if isinstance(event, Completed):
                self.meter.record(self.agent, event.response)
            yield event


class MeteredRouter:
    """The router as a task's runs see it: ``client(role)`` is metered, the rest is the
    router's own (embedders for knowledge search, settings, the ledger)."""

    def __init__(self, router: Any, meter: TaskMeter) -> None:
        self.router = router
        self.meter = meter
        self._clients: dict[str, MeteredClient] = {}  # the loop asks on every turn

    def client(self, role_or_model: str = "default") -> MeteredClient:
        client = self._clients.get(role_or_model)
        if client is None:
            inner = self.router.client(role_or_model)
            client = self._clients[role_or_model] = MeteredClient(inner, self.meter, role_or_model)
        return client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.router, name)
