"""A flow's graph: its states and transitions, checked before anything runs, drawn as Mermaid.

A state runs a step (a crew, an agent, a function, a :class:`~agentrig.flows.steps.Human`
question, or nothing for a final state); a transition goes from one state to another when
its condition holds, the highest ``priority`` first, then in declaration order.
:meth:`FlowGraph.check` refuses a graph with no initial state or several, a state no path
reaches, or one from which no final state can be reached, naming them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from agentrig.agents import Agent
from agentrig.crews import Crew
from agentrig.errors import ConfigError
from agentrig.flows.conditions import Condition


@dataclass
class FlowState:
    """One state. ``updates`` maps variables to fields of the step's structured output
    (``True``: the fields named like variables); ``output_to`` is the variable that keeps
    the step's text output; ``input`` the template an agent is given."""

    name: str
    run: Any = None
    initial: bool = False
    final: bool = False
    max_visits: int | None = None
    updates: Mapping[str, str] | bool | None = None
    output_to: str | None = None
    input: str | None = None
    description: str = ""

    @cached_property
    def kind(self) -> str:
        """What the state runs: ``crew``, ``agent``, ``human``, ``function`` or ``end``."""
        if self.run is None:
            return "end"
        if isinstance(self.run, Crew):
            return "crew"
        if isinstance(self.run, Agent):
            return "agent"
        if getattr(self.run, "kind", None) == "human":
            return "human"
        return "function"


@dataclass
class Transition:
    source: str
    target: str
    condition: Condition
    priority: int = 0
    order: int = 0


@dataclass
class FlowGraph:
    name: str
    states: dict[str, FlowState] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)
    _outgoing: dict[str, list[Transition]] = field(default_factory=dict, repr=False)
    _initial: str | None = field(default=None, repr=False)  # once check() passed

    def add_state(self, state: FlowState) -> None:
        where = f"flow {self.name!r}"
        if not state.name or not isinstance(state.name, str):
            raise ConfigError(f"{where}: a state needs a name")
        if state.name in self.states:
            raise ConfigError(f"{where} already has a state {state.name!r}")
        if state.max_visits is not None and state.max_visits < 1:
            raise ConfigError(f"{where}: state {state.name!r} has max_visits < 1")
        if state.initial and self.initial_states():
            raise ConfigError(
                f"{where} has an initial state already ({self.initial_states()[0]!r}); "
                f"{state.name!r} cannot be one too"
            )
        if state.run is not None and state.kind == "function" and not callable(state.run):
            raise ConfigError(
                f"{where}: state {state.name!r} runs {state.run!r}: a Crew, an Agent, a "
                "function or Human(...)"
            )
        if state.run is None and not state.final:
            raise ConfigError(f"{where}: state {state.name!r} runs nothing and is not final")
        self.states[state.name] = state
        self._initial = None

    def add_transition(
        self, source: str, target: str, condition: Condition, priority: int
    ) -> Transition:
        for end in (source, target):
            if end not in self.states:
                raise ConfigError(
                    f"flow {self.name!r}: transition {source!r} -> {target!r} names the unknown "
                    f"state {end!r}; states: {list(self.states)}"
                )
        if self.states[source].final:
            raise ConfigError(
                f"flow {self.name!r}: {source!r} is final; no transition leaves a final state"
            )
        transition = Transition(source, target, condition, int(priority), len(self.transitions))
        self.transitions.append(transition)
        self._outgoing.clear()
        self._initial = None
        return transition

    def initial_states(self) -> list[str]:
        return [state.name for state in self.states.values() if state.initial]

    def outgoing(self, source: str) -> list[Transition]:
        """``source``'s transitions in the order they are tried: priority, then order."""
        found = self._outgoing.get(source)
        if found is None:
            found = [t for t in self.transitions if t.source == source]
            found = self._outgoing[source] = sorted(found, key=lambda t: (-t.priority, t.order))
        return found

    def check(self) -> str:
        """Refuse a graph that cannot run to an end; the initial state's name."""
        if self._initial is not None:
            return self._initial
        where = f"flow {self.name!r}"
        initial = self.initial_states()
        if not initial:
            raise ConfigError(f"{where} has no initial state: mark one with initial=True")
        finals = [state.name for state in self.states.values() if state.final]
        if not finals:
            raise ConfigError(f"{where} has no final state: mark one with final=True")
        reached = _reach(initial[0], {s: [t.target for t in self.outgoing(s)] for s in self.states})
        unreachable = [name for name in self.states if name not in reached]
        if unreachable:
            raise ConfigError(f"{where}: no transition reaches the states {unreachable}")
        backwards: dict[str, list[str]] = {name: [] for name in self.states}
        for transition in self.transitions:
            backwards[transition.target].append(transition.source)
        ending = set().union(*(_reach(final, backwards) for final in finals))
        stuck = [name for name in self.states if name not in ending]
        if stuck:
            raise ConfigError(f"{where}: the states {stuck} have no way to a final state {finals}")
        self._initial = initial[0]
        return self._initial

    def mermaid(self) -> str:
        """The graph as Mermaid ``stateDiagram-v2`` text: each state with what it runs,
        each arrow with its condition and (when not 0) its priority."""
        lines = ["stateDiagram-v2"]
        ids = {name: _mermaid_id(name, index) for index, name in enumerate(self.states)}
        for name, state in self.states.items():
            what = _runs(state)
            label = f"{name} ({what})" if what else name
            if state.max_visits:
                label += f" (max {state.max_visits} visits)"
            lines.append(f'    state "{_escape(label)}" as {ids[name]}')
        for name in self.initial_states():
            lines.append(f"    [*] --> {ids[name]}")
        for transition in self.transitions:
            label = transition.condition.label
            if transition.priority:
                label += f" [priority {transition.priority}]"
            source, target = ids[transition.source], ids[transition.target]
            lines.append(f"    {source} --> {target}: {_escape(label)}")
        for name, state in self.states.items():
            if state.final:
                lines.append(f"    {ids[name]} --> [*]")
        return "\n".join(lines) + "\n"


def _reach(start: str, edges: Mapping[str, list[str]]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _runs(state: FlowState) -> str:
    kind = state.kind
    if kind == "end":
        return ""
    if kind in ("crew", "agent"):
        return f"{kind} {state.run.name}"
    if kind == "human":
        return "asks a person"
    return f"function {getattr(state.run, '__name__', 'step')}"


def _mermaid_id(name: str, index: int) -> str:
    cleaned = re.sub(r"\W", "_", name)
    return cleaned if cleaned == name and cleaned.isidentifier() else f"s{index}_{cleaned}"


def _escape(text: str) -> str:
    """Mermaid labels: no double quotes, colons or line breaks, which end them."""
    return text.replace('"', "'").replace(":", " -").replace("\n", " ")
