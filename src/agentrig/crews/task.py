"""``Task``: one piece of a crew's work, CrewAI's vocabulary on agentrig's runtime.

A task says what to do (``description``) and what a good answer looks like
(``expected_output``); ``{placeholders}`` in both are filled from the kickoff inputs, and a
missing input is an error naming it before any model call. ``context`` lists the tasks whose
outputs this one receives. Everything else is optional: a task-specific tool set, a pydantic
``output_type``, a ``guardrail`` that accepts the answer or returns feedback, a pause for
human review, a timeout, a callback and a file to write the answer to.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agentrig.agents import Agent
from agentrig.errors import ConfigError
from agentrig.tools.base import Tool

if TYPE_CHECKING:
    from agentrig.crews.result import TaskOutput

TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")  # {{, }} or {name}
TaskCallback = Callable[["TaskOutput"], Awaitable[None] | None]


class MissingInput(ConfigError):
    """A task names a ``{placeholder}`` the kickoff inputs do not give."""


def placeholders(text: str) -> list[str]:
    """The ``{names}`` in ``text``, in order, once each (``{{`` and ``}}`` are literal)."""
    return list(dict.fromkeys(name for name in TOKEN.findall(text) if name))


def fill(text: str, inputs: Mapping[str, Any], *, where: str) -> str:
    """``text`` with each ``{name}`` replaced by ``inputs[name]`` and ``{{``/``}}`` by braces.

    Only identifiers are placeholders, so a JSON example in a description stays as it is."""
    missing = [name for name in placeholders(text) if name not in inputs]
    if missing:
        raise MissingInput(
            f"{where} needs the input{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(name) for name in missing)}; kickoff inputs were "
            f"{sorted(inputs) or 'none'}"
        )

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(inputs[name]) if name else match.group(0)[0]

    return TOKEN.sub(value, text)


@dataclass(frozen=True, eq=False)
class Task:
    """A task for a crew; immutable (change one with :meth:`clone`).

    ``agent`` may be left out in a hierarchical crew (the manager decides who does it).
    ``guardrail`` is a function of the :class:`TaskOutput` (or an :class:`Agent` judging it,
    see :mod:`agentrig.crews.guardrails`); a rejected answer is tried again with the feedback
    up to ``max_retries`` times. ``timeout`` (seconds) cancels the task's whole run;
    ``max_turns`` bounds each of its runs. ``human_input`` pauses the crew for a review of
    the answer before the next task sees it."""

    description: str
    expected_output: str
    name: str = ""
    agent: Agent | None = None
    context: Sequence[Task | str] | None = None
    tools: Sequence[Tool] | None = None
    output_type: type[BaseModel] | None = None
    guardrail: Callable[..., Any] | Agent | None = None
    max_retries: int = 3
    human_input: bool = False
    timeout: float | None = None
    callback: TaskCallback | None = None
    output_file: str | None = None
    max_turns: int = 10

    def __post_init__(self) -> None:
        if not self.description.strip():
            raise ValueError(f"task {self.name or '(unnamed)'!r} needs a description")
        if self.max_retries < 0:
            raise ValueError(f"task {self.name!r}: max_retries must be >= 0")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"task {self.name!r}: timeout must be > 0 seconds")
        if self.context is not None:
            object.__setattr__(self, "context", tuple(self.context))
        if self.tools is not None:
            object.__setattr__(self, "tools", tuple(self.tools))

    def __repr__(self) -> str:
        return f"Task({self.name or self.description[:30]!r})"

    def clone(self, **changes: Any) -> Task:
        """A copy with ``changes`` applied (the original is unchanged)."""
        return dataclasses.replace(self, **changes)

    @property
    def inputs(self) -> list[str]:
        """The kickoff inputs this task's texts name."""
        texts = (self.description, self.expected_output, self.output_file or "")
        return list(dict.fromkeys(name for text in texts for name in placeholders(text)))

    def render(self, inputs: Mapping[str, Any]) -> tuple[str, str]:
        """The description and expected output with the inputs filled in."""
        where = f"task {self.name!r}"
        return (
            fill(self.description, inputs, where=where),
            fill(self.expected_output, inputs, where=where),
        )


def task_names(tasks: Sequence[Task]) -> list[str]:
    """Each task's name, ``task_<n>`` (its position from 1) for those without one."""
    return [task.name or f"task_{index}" for index, task in enumerate(tasks, 1)]
