"""Transition conditions: when a flow moves from one state to the next.

A condition is asked, after a state's step has run, whether its transition holds: it sees
the step's :class:`~agentrig.flows.records.StepRecord` (status, output, structured output)
and the flow's variables. The built-ins combine with ``&``, ``|`` and ``~`` (or ``And``,
``Or``, ``Not``); any function ``(step, variables) -> bool`` is a condition too. Each has a
``label``, which the Mermaid graph shows on its arrow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentrig.flows.records import StepRecord


class Condition:
    """Whether a transition holds after a step. Subclasses implement :meth:`holds`."""

    label: str = "condition"
    uses_variables: bool = True  # False: holds() does not look at the variables

    def holds(self, step: StepRecord, variables: Any) -> bool:
        raise NotImplementedError

    def __and__(self, other: Condition | Callable[..., bool]) -> And:
        return And(self, other)

    def __or__(self, other: Condition | Callable[..., bool]) -> Or:
        return Or(self, other)

    def __invert__(self) -> Not:
        return Not(self)

    def __repr__(self) -> str:
        return self.label


class Always(Condition):
    """Holds whatever the step did (a transition declared without ``when``)."""

    uses_variables = False

    label = "always"

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return True


class OnSuccess(Condition):
    """Holds when the step completed."""

    uses_variables = False

    label = "on success"

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return step.status == "completed"


class OnFailure(Condition):
    """Holds when the step failed (its error is the step's ``output``)."""

    uses_variables = False

    label = "on failure"

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return step.status == "failed"


class OutputContains(Condition):
    """Holds when the step completed and its output contains ``text`` (ignoring case
    unless ``case_sensitive``)."""

    uses_variables = False

    def __init__(self, text: str, *, case_sensitive: bool = False) -> None:
        if not text:
            raise ValueError("OutputContains needs the text to look for")
        self.text = text
        self.case_sensitive = case_sensitive
        self.label = f"output contains {text!r}"

    def holds(self, step: StepRecord, variables: Any) -> bool:
        if step.status != "completed":
            return False
        if self.case_sensitive:
            return self.text in step.output
        return self.text.casefold() in step.output.casefold()


class VariableEquals(Condition):
    """Holds when the flow variable ``name`` equals ``value`` (after the step's updates)."""

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value
        self.label = f"{name} == {value!r}"

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return variable(variables, self.name) == self.value


class And(Condition):
    def __init__(self, *conditions: Condition | Callable[..., bool]) -> None:
        if len(conditions) < 2:
            raise ValueError("And needs at least two conditions")
        self.conditions = [as_condition(c) for c in conditions]
        self.label = " and ".join(_grouped(c) for c in self.conditions)
        self.uses_variables = any(c.uses_variables for c in self.conditions)

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return all(c.holds(step, variables) for c in self.conditions)


class Or(Condition):
    def __init__(self, *conditions: Condition | Callable[..., bool]) -> None:
        if len(conditions) < 2:
            raise ValueError("Or needs at least two conditions")
        self.conditions = [as_condition(c) for c in conditions]
        self.label = " or ".join(_grouped(c) for c in self.conditions)
        self.uses_variables = any(c.uses_variables for c in self.conditions)

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return any(c.holds(step, variables) for c in self.conditions)


class Not(Condition):
    def __init__(self, condition: Condition | Callable[..., bool]) -> None:
        self.condition = as_condition(condition)
        self.label = f"not {_grouped(self.condition)}"
        self.uses_variables = self.condition.uses_variables

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return not self.condition.holds(step, variables)


class Check(Condition):
    """A function ``(step, variables) -> bool`` as a condition, labelled by its name."""

    def __init__(self, function: Callable[[StepRecord, Any], bool], label: str = "") -> None:
        self.function = function
        self.label = label or getattr(function, "__name__", "check").strip("<>")

    def holds(self, step: StepRecord, variables: Any) -> bool:
        return bool(self.function(step, variables))


def as_condition(when: Condition | Callable[..., bool] | None) -> Condition:
    """``when`` as a condition: ``None`` is :class:`Always`, a function a :class:`Check`."""
    if when is None:
        return Always()
    if isinstance(when, Condition):
        return when
    if callable(when):
        return Check(when)
    raise TypeError(f"a transition's condition is a Condition or a function, not {when!r}")


def variable(variables: Any, name: str) -> Any:
    """The variable ``name`` of a pydantic model or a dict of variables."""
    if isinstance(variables, dict):
        if name not in variables:
            raise KeyError(f"the flow has no variable {name!r}: {sorted(variables)}")
        return variables[name]
    if not hasattr(variables, name):
        fields = sorted(getattr(type(variables), "model_fields", {}))
        raise KeyError(f"the flow has no variable {name!r}: {fields}")
    return getattr(variables, name)


def _grouped(condition: Condition) -> str:
    return f"({condition.label})" if isinstance(condition, And | Or) else condition.label


def named_variables(condition: Condition) -> list[str]:
    """The variables the ``VariableEquals`` inside ``condition`` name (to check them early)."""
    if isinstance(condition, VariableEquals):
        return [condition.name]
    if isinstance(condition, And | Or):
        return [name for part in condition.conditions for name in named_variables(part)]
    if isinstance(condition, Not):
        return named_variables(condition.condition)
    return []
