"""Crews from YAML, in CrewAI's layout, so its users can bring their files.

``agents.yaml`` maps agent names to ``role``, ``goal``, ``backstory``, ``model`` (or
CrewAI's ``llm``), ``tools`` (names) and ``allow_delegation``; ``tasks.yaml`` maps task
names to ``description``, ``expected_output``, ``agent``, ``context`` (task names) and the
other Task options; an agentrig crew file (``crew.yaml``) names the process and options
and, optionally, where the other two are (by default beside it or in ``config/``) and the
MCP servers its agents may use (``mcp_servers``). Tools, output types and guardrails are
named in YAML and resolved from registries given in Python (see :mod:`agentrig.crews.tools`
for ``knowledge_search`` and ``mcp:<name>``). Every error names the file, the line and the
key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentrig.agents import Agent
from agentrig.crews.guardrails import max_words
from agentrig.crews.process import Process
from agentrig.crews.task import Task
from agentrig.crews.tools import MCP_PREFIX, MCPServerSpec, ToolRegistry, mcp_servers
from agentrig.errors import ConfigError
from agentrig.tools import calculator
from agentrig.tools.base import Tool

if TYPE_CHECKING:
    from agentrig.knowledge.service import Knowledge

BUILTIN_TOOLS: dict[str, Tool] = {"calculator": calculator}
Lines = dict[tuple[Any, ...], int]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AgentSpec(_Strict):
    role: str = ""
    goal: str = ""
    backstory: str = ""
    instructions: str | None = None
    description: str = ""
    model: str = Field("default", alias="llm")
    tools: list[str] = Field(default_factory=list)
    allow_delegation: bool = False
    verbose: bool = False  # CrewAI's; the crew's verbose is what counts here


class TaskSpec(_Strict):
    description: str
    expected_output: str = ""
    agent: str | None = None
    context: list[str] | None = None
    tools: list[str] | None = None
    output_type: str | None = Field(None, alias="output_pydantic")
    guardrail: str | None = None
    max_retries: int = Field(3, alias="guardrail_max_retries")
    human_input: bool = False
    timeout: float | None = None
    output_file: str | None = None
    max_turns: int = 10


class ManagerSpec(AgentSpec):
    role: str = "Crew Manager"


class CrewSpec(_Strict):
    name: str | None = None
    description: str = ""
    process: Process = Process.sequential
    agents: str = "agents.yaml"
    tasks: str = "tasks.yaml"
    manager: ManagerSpec | None = None
    max_delegations: int = 3
    max_concurrency: int = 4
    max_cost_usd: float | None = None
    max_turns: int | None = None
    verbose: bool = False
    mcp_servers: dict[str, MCPServerSpec] = Field(default_factory=dict)


def tools_by_name(tools: Mapping[str, Tool] | Sequence[Tool]) -> dict[str, Tool]:
    """A tool registry given as a mapping or a list, by the names YAML uses."""
    return dict(tools) if isinstance(tools, Mapping) else {tool.name: tool for tool in tools}


def types_by_name(
    types: Mapping[str, type[BaseModel]] | Sequence[type[BaseModel]],
) -> dict[str, type[BaseModel]]:
    """An output-type registry given as a mapping or a list, by class name."""
    return dict(types) if isinstance(types, Mapping) else {t.__name__: t for t in types}


def read_yaml(path: Path) -> tuple[Any, Lines]:
    """The document in ``path`` and the line of each key (by its path of keys)."""
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: Lines = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, at: tuple[Any, ...], lines: Lines) -> None:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(*at, key.value)] = key.start_mark.line + 1
            _walk(value, (*at, key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _walk(value, (*at, index), lines)


def yaml_error(path: Path, lines: Lines, at: Sequence[Any], message: str) -> ConfigError:
    at = tuple(at)
    while at and at not in lines:
        at = at[:-1]
    key = ".".join(str(part) for part in at) or "(top)"
    return ConfigError(f"{path}:{lines.get(at, 1)}: {key}: {message}")


def parse_spec(
    model: type[BaseModel], data: Any, path: Path, lines: Lines, at: tuple[Any, ...]
) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise yaml_error(path, lines, (*at, *error["loc"]), error["msg"]) from None


def _entries(path: Path, what: str) -> tuple[dict[str, Any], Lines]:
    data, lines = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise yaml_error(path, lines, (), f"expected a mapping of {what} names to their fields")
    return data, lines


def _locate(base: Path, name: str) -> Path:
    for candidate in (base / name, base / "config" / name):
        if candidate.exists():
            return candidate
    raise ConfigError(f"no {name} beside {base} or in {base / 'config'}")


def crew_arguments(
    path: str | Path,
    *,
    tools: Mapping[str, Tool] | Sequence[Tool] = (),
    output_types: Mapping[str, type[BaseModel]] | Sequence[type[BaseModel]] = (),
    guardrails: Mapping[str, Callable[..., Any] | Agent] | None = None,
    knowledge: Knowledge | None = None,
    tenant: str = "default",
    **options: Any,
) -> dict[str, Any]:
    """The ``Crew`` arguments ``path`` describes: a crew file, or a folder holding
    ``crew.yaml`` (optional), ``agents.yaml`` and ``tasks.yaml`` (or ``config/`` with them).
    ``knowledge`` and ``tenant`` back the ``knowledge_search`` tools: one tenant's documents."""
    path = Path(path)
    crew_file = path / "crew.yaml" if path.is_dir() else path
    base = path if path.is_dir() else path.parent
    spec, lines = CrewSpec(), {}
    if crew_file.exists() or not path.is_dir():
        data, lines = read_yaml(crew_file)
        spec = parse_spec(CrewSpec, data or {}, crew_file, lines, ())
    known = dict(BUILTIN_TOOLS)
    known.update(tools_by_name(tools))
    servers: dict[str, Any] = {}
    if spec.mcp_servers:
        try:
            servers = mcp_servers(spec.mcp_servers)  # imports the mcp extra only when needed
        except ImportError as exc:
            raise yaml_error(crew_file, lines, ("mcp_servers",), str(exc)) from None
    registry = ToolRegistry(known, knowledge=knowledge, tenant=tenant, servers=servers)
    types = types_by_name(output_types)
    agents_path = _locate(base, spec.agents)
    agents = _agents(agents_path, registry)
    tasks = _tasks(_locate(base, spec.tasks), agents, registry, types, guardrails or {})
    manager = None
    if spec.manager is not None:
        manager = build_agent("manager", spec.manager, registry, crew_file, lines, ("manager",))
    name = spec.name or (path.name if path.is_dir() else base.name)
    return dict(
        name=name,
        agents=list(agents.values()),
        tasks=tasks,
        process=spec.process,
        manager=manager,
        max_delegations=spec.max_delegations,
        max_concurrency=spec.max_concurrency,
        max_cost_usd=spec.max_cost_usd,
        max_turns=spec.max_turns,
        verbose=spec.verbose,
        description=spec.description,
        **options,
    )


def find_crews(folder: str | Path) -> dict[str, Path]:
    """The crews in ``folder``: each sub-folder with a ``crew.yaml``, or an ``agents.yaml``
    and ``tasks.yaml`` (beside it or in ``config/``), by its crew name."""
    found: dict[str, Path] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return found
    for path in sorted(p for p in folder.iterdir() if p.is_dir()):
        crew_file = path / "crew.yaml"
        has_files = any((path / d / "tasks.yaml").exists() for d in (".", "config"))
        if not crew_file.exists() and not has_files:
            continue
        name = path.name
        if crew_file.exists():
            data, _ = read_yaml(crew_file)
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                name = data["name"]
        found[name] = path
    return found


def _agents(path: Path, registry: ToolRegistry) -> dict[str, Agent]:
    data, lines = _entries(path, "agent")
    agents = {}
    for name, fields in data.items():
        spec = parse_spec(AgentSpec, fields or {}, path, lines, (name,))
        agents[name] = build_agent(name, spec, registry, path, lines, (name,))
    return agents


def build_agent(
    name: str, spec: AgentSpec, registry: ToolRegistry, path: Path, lines: Lines, at: tuple
) -> Agent:
    tools: list[Tool] = []
    servers: list[Any] = []
    for index, tool in enumerate(spec.tools):
        try:
            found = registry.resolve(tool)
        except ValueError as exc:
            raise yaml_error(path, lines, (*at, "tools", index), str(exc)) from None
        (servers if tool.startswith(MCP_PREFIX) else tools).append(found)
    try:
        return Agent(
            name=str(name),
            instructions=spec.instructions,
            description=spec.description,
            model=spec.model,
            tools=tools,
            mcp_servers=servers,
            role=spec.role.strip(),
            goal=spec.goal.strip(),
            backstory=spec.backstory.strip(),
            allow_delegation=spec.allow_delegation,
        )
    except ValueError as exc:
        raise yaml_error(path, lines, at, str(exc)) from None


def _tasks(
    path: Path,
    agents: Mapping[str, Agent],
    registry: ToolRegistry,
    types: Mapping[str, type[BaseModel]],
    guardrails: Mapping[str, Any],
) -> list[Task]:
    data, lines = _entries(path, "task")
    tasks = []
    for name, fields in data.items():
        spec = parse_spec(TaskSpec, fields or {}, path, lines, (name,))
        at = (name,)
        if spec.agent is not None and spec.agent not in agents:
            raise yaml_error(
                path,
                lines,
                (*at, "agent"),
                f"unknown agent {spec.agent!r}; agents.yaml has {sorted(agents)}",
            )
        for index, ref in enumerate(spec.context or []):
            if ref not in data:
                raise yaml_error(
                    path,
                    lines,
                    (*at, "context", index),
                    f"unknown task {ref!r}; tasks.yaml has {sorted(data)}",
                )
        tools = None
        if spec.tools is not None:
            tools = [
                _task_tool(registry, tool, path, lines, (*at, "tools", i))
                for i, tool in enumerate(spec.tools)
            ]
        if spec.output_type is not None and spec.output_type not in types:
            raise yaml_error(
                path,
                lines,
                (*at, "output_type"),
                f"unknown output type {spec.output_type!r}; known: {sorted(types)} "
                "(give yours with from_yaml(output_types=...))",
            )
        try:
            tasks.append(
                Task(
                    name=str(name),
                    description=spec.description.strip(),
                    expected_output=spec.expected_output.strip(),
                    agent=agents[spec.agent] if spec.agent else None,
                    context=spec.context,
                    tools=tools,
                    output_type=types[spec.output_type] if spec.output_type else None,
                    guardrail=_guardrail(spec.guardrail, guardrails, path, lines, at),
                    max_retries=spec.max_retries,
                    human_input=spec.human_input,
                    timeout=spec.timeout,
                    output_file=spec.output_file,
                    max_turns=spec.max_turns,
                )
            )
        except ValueError as exc:
            raise yaml_error(path, lines, at, str(exc)) from None
    return tasks


def _task_tool(registry: ToolRegistry, name: str, path: Path, lines: Lines, at: tuple) -> Tool:
    try:
        return registry.tool(name)
    except ValueError as exc:
        raise yaml_error(path, lines, at, str(exc)) from None


def _guardrail(
    name: str | None, known: Mapping[str, Any], path: Path, lines: Lines, at: tuple
) -> Any:
    """A registered guardrail by name, or ``max_words(N)``."""
    if name is None:
        return None
    if name in known:
        return known[name]
    words = name.replace(" ", "")
    if words.startswith("max_words(") and words.endswith(")") and words[10:-1].isdigit():
        return max_words(int(words[10:-1]))
    raise yaml_error(
        path,
        lines,
        (*at, "guardrail"),
        f"unknown guardrail {name!r}; known: {sorted(known)} or max_words(N)",
    )
