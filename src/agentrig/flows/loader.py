"""Flows from YAML: a ``flow.yaml`` in a folder beside the crews it runs.

```yaml
name: content                 # else the folder's name
variables:                    # name: default, or name: {type: str|int|…, default: …}
  topic: {type: str}          # no default: a required input
  drafts: 0
agents:                       # optional; the fields of agents.yaml, and output_type
  reviewer: {role: Editor, goal: …, backstory: …, output_type: "my.module:Review"}
states:
  research: {crew: research, initial: true}       # a crew of the crews folder
  review: {agent: reviewer, input: "Review: {output}", updates: true}
  triage: {function: "my.module:triage"}          # an import path, or a functions= name
  escalation: {human: "Please answer: {question}"}
  published: {final: true}
transitions:
  - {from: review, to: published, when: {output_contains: approved}, priority: 10}
  - {from: review, to: revision, when: {variable_equals: {verdict: revise}}}
  - {from: revision, to: writing}                  # always
```

Conditions: ``always``, ``on_success``, ``on_failure``, ``{output_contains: text}``,
``{variable_equals: {name: value}}``, ``{and: [...]}``, ``{or: [...]}``, ``{not: …}`` and
``{check: "module:function"}``. Every error names the file, the line and the key.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, create_model

from agentrig.crews import Crew
from agentrig.crews.loader import (
    BUILTIN_TOOLS,
    AgentSpec,
    Lines,
    build_agent,
    parse_spec,
    read_yaml,
    tools_by_name,
    types_by_name,
    yaml_error,
)
from agentrig.crews.tools import ToolRegistry
from agentrig.errors import AgentrigError, ConfigError
from agentrig.flows.conditions import (
    Always,
    And,
    Check,
    Condition,
    Not,
    OnFailure,
    OnSuccess,
    Or,
    OutputContains,
    VariableEquals,
)
from agentrig.flows.flow import Flow
from agentrig.flows.steps import Human
from agentrig.tools.base import Tool

TYPES: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool, "list": list}
TYPES |= {"dict": dict, "any": Any}
_SIMPLE = {"always": Always, "on_success": OnSuccess, "on_failure": OnFailure}
CONDITIONS = [*_SIMPLE, "output_contains", "variable_equals", "and", "or", "not", "check"]


class _Strict(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}


class FlowAgentSpec(AgentSpec):
    output_type: str | None = None


class StateSpec(_Strict):
    crew: str | None = None
    agent: str | None = None
    function: str | None = None
    human: str | None = None
    initial: bool = False
    final: bool = False
    max_visits: int | None = Field(None, ge=1)
    updates: dict[str, str] | bool | None = None
    output_to: str | None = None
    input: str | None = None
    description: str = ""


class TransitionSpec(_Strict):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    when: Any = "always"
    priority: int = 0


class FlowSpec(_Strict):
    name: str | None = None
    description: str = ""
    variables: dict[str, Any] = Field(default_factory=dict)
    max_steps: int = Field(100, ge=1)
    agents: dict[str, FlowAgentSpec] = Field(default_factory=dict)
    states: dict[str, StateSpec]
    transitions: list[TransitionSpec] = Field(default_factory=list)


def load_flow(
    path: str | Path,
    *,
    crews: Mapping[str, Crew] | Callable[[str], Crew] | None = None,
    functions: Mapping[str, Callable[..., Any]] | None = None,
    output_types: Mapping[str, type[BaseModel]] | Sequence[type[BaseModel]] = (),
    tools: Mapping[str, Tool] | Sequence[Tool] = (),
    knowledge: Any = None,
    tenant: str = "default",
    **options: Any,
) -> Flow:
    """The flow in ``path`` (a ``flow.yaml``, or a folder holding one). ``crews`` finds
    the crews its states name (by default: those in the folder beside the flow's)."""
    path = Path(path)
    file = path / "flow.yaml" if path.is_dir() else path
    data, lines = read_yaml(file)
    spec: FlowSpec = parse_spec(FlowSpec, data or {}, file, lines, ())
    name = spec.name or file.parent.name
    find_crew = _crew_finder(
        crews,
        file.parent.parent,
        router=options.get("router"),
        tools=tools,
        output_types=output_types,
        knowledge=knowledge,
        tenant=tenant,
    )
    registry = ToolRegistry(
        {**BUILTIN_TOOLS, **tools_by_name(tools)}, knowledge=knowledge, tenant=tenant
    )
    resolve = _Resolver(file, lines, functions or {}, types_by_name(output_types))
    agents = {}
    for agent_name, agent_spec in spec.agents.items():
        at = ("agents", agent_name)
        agent = build_agent(agent_name, agent_spec, registry, file, lines, at)
        if agent_spec.output_type:
            kind = resolve.output_type(agent_spec.output_type, (*at, "output_type"))
            agent = agent.clone(output_type=kind)
        agents[agent_name] = agent
    flow = Flow(
        name,
        variables=_variables(name, spec.variables, file, lines),
        max_steps=spec.max_steps,
        description=spec.description,
        **options,
    )
    for state_name, state in spec.states.items():
        at = ("states", state_name)
        run = _step(state, agents, find_crew, resolve, file, lines, at)
        try:
            flow.state(
                state_name,
                run=run,
                initial=state.initial,
                final=state.final,
                max_visits=state.max_visits,
                updates=state.updates,
                output_to=state.output_to,
                input=state.input,
                description=state.description,
            )
        except ConfigError as exc:
            raise yaml_error(file, lines, at, str(exc)) from None
    for index, transition in enumerate(spec.transitions):
        at = ("transitions", index)
        when = _condition(transition.when, resolve, (*at, "when"))
        try:
            flow.transition(
                transition.source, transition.target, when=when, priority=transition.priority
            )
        except ConfigError as exc:
            raise yaml_error(file, lines, at, str(exc)) from None
    try:
        flow.validate()
    except ConfigError as exc:
        raise yaml_error(file, lines, ("states",), str(exc)) from None
    return flow


def find_flows(folder: str | Path) -> dict[str, Path]:
    """The flows in ``folder``: each sub-folder with a ``flow.yaml``, by its flow name."""
    found: dict[str, Path] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return found
    for path in sorted(p for p in folder.iterdir() if (p / "flow.yaml").exists()):
        data, _ = read_yaml(path / "flow.yaml")
        name = data.get("name") if isinstance(data, dict) else None
        found[name if isinstance(name, str) else path.name] = path / "flow.yaml"
    return found


class _Resolver:
    """Names in the file: registered ones first, else ``module:attribute`` import paths."""

    def __init__(
        self,
        file: Path,
        lines: Lines,
        functions: Mapping[str, Callable[..., Any]],
        types: Mapping[str, type[BaseModel]],
    ) -> None:
        self.file, self.lines, self.functions, self.types = file, lines, functions, types

    def function(self, name: str, at: tuple[Any, ...]) -> Callable[..., Any]:
        found = self.functions.get(name) or self._import(name, at, "functions")
        if not callable(found):
            raise yaml_error(self.file, self.lines, at, f"{name!r} is not a function")
        return found

    def output_type(self, name: str, at: tuple[Any, ...]) -> type[BaseModel]:
        found = self.types.get(name) or self._import(name, at, "output_types")
        if not (isinstance(found, type) and issubclass(found, BaseModel)):
            raise yaml_error(self.file, self.lines, at, f"{name!r} is not a pydantic model")
        return found

    def _import(self, name: str, at: tuple[Any, ...], registry: str) -> Any:
        module, sep, attribute = name.partition(":")
        if not sep:
            known = sorted(self.functions if registry == "functions" else self.types)
            raise yaml_error(
                self.file,
                self.lines,
                at,
                f"unknown {registry[:-1].replace('_', ' ')} {name!r}: give it with "
                f"from_yaml({registry}=...) (known: {known}) or as module:attribute",
            )
        try:
            value: Any = importlib.import_module(module)
            for part in attribute.split("."):
                value = getattr(value, part)
        except (ImportError, AttributeError) as exc:
            raise yaml_error(self.file, self.lines, at, f"cannot import {name!r}: {exc}") from None
        return value


def _crew_finder(
    crews: Mapping[str, Crew] | Callable[[str], Crew] | None, folder: Path, **registries: Any
) -> Callable[[str], Crew]:
    """How the states' crew names are found: ``crews`` (a mapping or a function), else the
    crews of the folder beside the flow's, built with the flow's router and registries."""
    if callable(crews):
        return crews
    if crews is not None:
        known = dict(crews)

        def registered(name: str) -> Crew:
            if name not in known:
                raise ConfigError(f"unknown crew {name!r}; known: {sorted(known)}")
            return known[name]

        return registered
    from agentrig.crews.loader import find_crews

    def beside(name: str) -> Crew:
        found = find_crews(folder)
        if name not in found:
            raise ConfigError(f"no crew {name!r} in {folder}: found {sorted(found) or 'none'}")
        return Crew.from_yaml(found[name], **registries)

    return beside


def _step(
    state: StateSpec,
    agents: Mapping[str, Any],
    find_crew: Callable[[str], Crew],
    resolve: _Resolver,
    file: Path,
    lines: Lines,
    at: tuple[Any, ...],
) -> Any:
    given = [key for key in ("crew", "agent", "function", "human") if getattr(state, key)]
    if len(given) > 1:
        raise yaml_error(file, lines, at, f"a state runs one thing; this one names {given}")
    if state.crew:
        try:
            return find_crew(state.crew)
        except AgentrigError as exc:  # a ConfigError, or the catalog's UnknownCrew
            raise yaml_error(file, lines, (*at, "crew"), str(exc)) from None
    if state.agent:
        if state.agent not in agents:
            raise yaml_error(
                file,
                lines,
                (*at, "agent"),
                f"unknown agent {state.agent!r}; agents: {sorted(agents)}",
            )
        return agents[state.agent]
    if state.function:
        return resolve.function(state.function, (*at, "function"))
    if state.human:
        return Human(state.human)
    return None


def _variables(flow: str, given: Mapping[str, Any], file: Path, lines: Lines) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, value in given.items():
        at = ("variables", name)
        if isinstance(value, dict) and "type" in value:
            extra = sorted(set(value) - {"type", "default", "description"})
            if extra:
                raise yaml_error(
                    file, lines, (*at, extra[0]), "a variable has type, default, description"
                )
            kind = TYPES.get(str(value["type"]))
            if kind is None:
                raise yaml_error(
                    file,
                    lines,
                    (*at, "type"),
                    f"unknown type {value['type']!r}; types: {sorted(TYPES)}",
                )
            default = value.get("default", ...)
            fields[name] = (
                kind | None if default is None else kind,
                Field(default, description=value.get("description")),
            )
        else:
            fields[name] = (type(value) if value is not None else Any, value)
    return create_model(f"{flow.title().replace('-', '')}Variables", **fields)


def _condition(value: Any, resolve: _Resolver, at: tuple[Any, ...]) -> Condition:
    fail = lambda message: yaml_error(resolve.file, resolve.lines, at, message)  # noqa: E731
    if value is None:
        return Always()
    if isinstance(value, str):
        if value in _SIMPLE:
            return _SIMPLE[value]()
        raise fail(f"unknown condition {value!r}; conditions: {CONDITIONS}")
    if not isinstance(value, dict) or len(value) != 1:
        raise fail("a condition is a name (on_success) or a mapping with one key")
    ((key, argument),) = value.items()
    if key == "output_contains":
        options = argument if isinstance(argument, dict) else {"text": argument}
        if not options.get("text"):
            raise fail("output_contains needs the text to look for")
        sensitive = bool(options.get("case_sensitive"))
        return OutputContains(str(options["text"]), case_sensitive=sensitive)
    if key == "variable_equals":
        if not isinstance(argument, dict) or len(argument) != 1:
            raise fail("variable_equals takes one {name: value}")
        ((name, expected),) = argument.items()
        return VariableEquals(str(name), expected)
    if key in ("and", "or"):
        if not isinstance(argument, list) or len(argument) < 2:
            raise fail(f"{key} takes a list of at least two conditions")
        parts = [_condition(part, resolve, (*at, key, i)) for i, part in enumerate(argument)]
        return And(*parts) if key == "and" else Or(*parts)
    if key == "not":
        return Not(_condition(argument, resolve, (*at, key)))
    if key == "check":
        function = resolve.function(str(argument), (*at, key))
        return Check(function, label=str(argument).rpartition(":")[2])
    raise fail(f"unknown condition {key!r}; conditions: {CONDITIONS}")
