"""Task guardrails: accept a task's answer, or send it back with feedback.

A guardrail is a function of the :class:`~agentrig.crews.result.TaskOutput` (sync or async)
returning ``True`` or ``None`` (accepted), ``False`` (rejected), a string (rejected, the
string is the feedback) or CrewAI's ``(ok, value)`` pair (accepted with ``value`` as the new
answer, or rejected with ``value`` as the feedback). It can also be an :class:`Agent` that
judges the answer: its output is a :class:`GuardrailVerdict`. :func:`max_words` is the
common case ready-made.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agentrig.agents import Agent
from agentrig.crews.result import TaskOutput


class GuardrailVerdict(BaseModel):
    """What a guardrail agent answers: ``valid``, and ``feedback`` when it is not."""

    valid: bool
    feedback: str = ""


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    feedback: str = ""
    replacement: Any = None  # an accepted answer's new value, from an (ok, value) pair


Judge = Callable[[Agent, TaskOutput], Awaitable[GuardrailVerdict]]


def max_words(limit: int) -> Callable[[TaskOutput], bool | str]:
    """A guardrail accepting answers of at most ``limit`` words."""
    if limit < 1:
        raise ValueError("max_words needs a limit of at least 1")

    def check(output: TaskOutput) -> bool | str:
        count = len(output.raw.split())
        if count <= limit:
            return True
        return f"The answer has {count} words; it must have at most {limit}. Shorten it."

    check.__name__ = f"max_words({limit})"
    return check


def guardrail_name(guardrail: Any) -> str:
    if isinstance(guardrail, Agent):
        return f"agent {guardrail.name!r}"
    return getattr(guardrail, "__name__", type(guardrail).__name__)


async def check(guardrail: Any, output: TaskOutput, judge: Judge) -> Verdict:
    """Apply ``guardrail`` to ``output``; ``judge`` runs a guardrail agent."""
    if isinstance(guardrail, Agent):
        verdict = await judge(guardrail, output)
        return Verdict(verdict.valid, "" if verdict.valid else verdict.feedback or "rejected")
    value = guardrail(output)
    if inspect.isawaitable(value):
        value = await value
    return interpret(value, guardrail_name(guardrail))


def interpret(value: Any, name: str) -> Verdict:
    """What a guardrail function's return value means."""
    if value is None or value is True:
        return Verdict(True)
    if value is False:
        return Verdict(False, f"The answer did not pass the guardrail {name}.")
    if isinstance(value, str):
        return Verdict(False, value)
    if isinstance(value, GuardrailVerdict):
        return Verdict(value.valid, "" if value.valid else value.feedback or "rejected")
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        ok, detail = value
        return Verdict(True, replacement=detail) if ok else Verdict(False, str(detail))
    raise TypeError(
        f"guardrail {name} returned {value!r}; expected True/None (accept), False or a "
        "feedback string (reject), or an (ok, value) pair"
    )
