"""Guardrails: checks that can stop a run.

An input guardrail sees the run's input and runs alongside the first model call (so it
adds no latency when it passes); an output guardrail sees the final output. Each returns
a :class:`GuardrailResult` (or a bool, ``True`` meaning tripped); a tripped guardrail
raises :class:`~agentrig.errors.GuardrailTripped` with the guardrail's output. A
guardrail can itself be an agent: :func:`agent_guardrail`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agentrig.items import Item, Message

if TYPE_CHECKING:
    from agentrig.agents.agent import Agent
    from agentrig.agents.context import RunContext


@dataclass(frozen=True)
class GuardrailResult:
    tripped: bool
    output: Any = None


GuardrailFunction = Callable[..., GuardrailResult | bool | Awaitable[GuardrailResult | bool]]


@dataclass(frozen=True)
class Guardrail:
    """A named check; ``stage`` is ``input`` (sees the input items) or ``output``."""

    name: str
    function: GuardrailFunction
    stage: Literal["input", "output"]

    async def check(self, ctx: RunContext, agent: Agent, value: Any) -> GuardrailResult:
        result = self.function(ctx, agent, value)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, GuardrailResult):
            return result
        return GuardrailResult(tripped=bool(result), output=result)


InputGuardrail = Guardrail
OutputGuardrail = Guardrail


def _decorator(stage: Literal["input", "output"], function: Any, name: str | None) -> Any:
    def make(function: GuardrailFunction) -> Guardrail:
        return Guardrail(name or function.__name__, function, stage)

    return make(function) if function is not None else make


def input_guardrail(function: GuardrailFunction | None = None, *, name: str | None = None) -> Any:
    """``@input_guardrail``: ``def check(ctx, agent, items) -> GuardrailResult | bool``."""
    return _decorator("input", function, name)


def output_guardrail(function: GuardrailFunction | None = None, *, name: str | None = None) -> Any:
    """``@output_guardrail``: ``def check(ctx, agent, output) -> GuardrailResult | bool``."""
    return _decorator("output", function, name)


def agent_guardrail(
    checker: Agent,
    *,
    stage: Literal["input", "output"] = "input",
    tripped: Callable[[Any], bool] | None = None,
    max_turns: int = 3,
) -> Guardrail:
    """A guardrail that asks ``checker`` about the input (or output) text.

    ``tripped`` decides from the checker's final output; by default the output's
    ``tripped`` attribute or key (give the checker an ``output_type`` with that field).
    """

    async def check(ctx: RunContext, agent: Agent, value: Any) -> GuardrailResult:
        text = _as_text(value)
        result = await ctx.run_nested(checker, text, context=dict(ctx.context), max_turns=max_turns)
        output = result.final_output
        decide = tripped or _tripped_field
        return GuardrailResult(tripped=bool(decide(output)), output=output)

    return Guardrail(checker.name, check, stage)


def _tripped_field(output: Any) -> bool:
    if isinstance(output, dict):
        return bool(output.get("tripped"))
    return bool(getattr(output, "tripped", False))


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(item.text for item in value if isinstance(item, Message))
    if hasattr(value, "model_dump_json"):
        return value.model_dump_json()
    return str(value)


def input_text(items: list[Item]) -> str:
    """The text of the user messages among ``items`` (handy inside input guardrails)."""
    return _as_text(items)
