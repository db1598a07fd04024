"""``Crew``: agents working through tasks in a process, started with ``kickoff``.

A crew is a description (agents, tasks, a process, limits); each kickoff gets its own
:class:`CrewState`, so one crew object serves concurrent kickoffs. Every task is one
``Runner`` run per attempt, and every model call goes through the router, metered for the
crew: ``max_cost_usd`` and ``max_turns`` stop it with its partial results, and a paused
crew's state resumes it later, in this process or another. The MCP servers of its agents
are connected while any kickoff runs, and closed after the last one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agentrig.agents import Agent, default_router
from agentrig.crews.events import CrewEvent, CrewStarted
from agentrig.crews.execute import Kickoff, TaskExecution, output_of
from agentrig.crews.loader import crew_arguments
from agentrig.crews.meter import CrewLimitReached, CrewMeter
from agentrig.crews.process import Process, context_names, dependencies, schedule
from agentrig.crews.prompts import MANAGER_BACKSTORY, MANAGER_GOAL, MANAGER_ROLE, CrewPrompts
from agentrig.crews.result import CrewResult
from agentrig.crews.state import CrewState, TaskRecord
from agentrig.crews.streaming import CrewStream
from agentrig.crews.task import MissingInput, Task, fill, placeholders, task_names
from agentrig.crews.tools import SharedConnections
from agentrig.errors import AgentrigError, ConfigError
from agentrig.usage import Usage

TURNS_PER_TASK = 25  # the default crew-wide allowance of model calls, per task


class Crew:
    """Agents, tasks and a process. ``manager`` (hierarchical only) is built from the
    router's ``manager`` role (or ``default``) when not given; ``max_delegations`` bounds
    each task's delegations; ``max_turns`` the crew's model calls (25 per task unless set)."""

    def __init__(
        self,
        name: str = "crew",
        *,
        agents: Sequence[Agent] = (),
        tasks: Sequence[Task],
        process: Process | str = Process.sequential,
        manager: Agent | None = None,
        max_delegations: int = 3,
        max_concurrency: int = 4,
        max_cost_usd: float | None = None,
        max_turns: int | None = None,
        verbose: bool = False,
        router: Any = None,
        prompts: CrewPrompts | None = None,
        description: str = "",
    ) -> None:
        if not tasks:
            raise ConfigError(f"crew {name!r} needs at least one task")
        self.name = name
        self.description = description
        self.process = Process(process)
        names = task_names(tasks)
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"crew {name!r} has several tasks named {duplicated}")
        known = {id(task): task_name for task, task_name in zip(tasks, names, strict=True)}

        def ref_name(task: str, ref: Task | str) -> str:
            if isinstance(ref, str):
                return ref
            if id(ref) not in known:
                raise ConfigError(
                    f"task {task!r} has {ref!r} in its context, which is not a task of crew "
                    f"{name!r}: {names}"
                )
            return known[id(ref)]

        self.tasks = [
            task.clone(
                name=task_name,
                context=None
                if task.context is None
                else [ref_name(task_name, ref) for ref in task.context],
            )
            for task, task_name in zip(tasks, names, strict=True)
        ]
        self.agents = _agents(name, agents, self.tasks)
        self.context = context_names(self.tasks, self.process)
        self.needs = dependencies(self.tasks, self.process)
        if self.process is not Process.hierarchical:
            unassigned = [task.name for task in self.tasks if task.agent is None]
            if unassigned:
                raise ConfigError(
                    f"crew {name!r}: tasks {unassigned} have no agent; give each one, or "
                    "use Process.hierarchical and let the manager assign them"
                )
            if manager is not None:
                raise ConfigError(f"crew {name!r}: a manager needs Process.hierarchical")
        elif not self.agents:
            raise ConfigError(f"hierarchical crew {name!r} needs agents for its manager")
        if manager is not None and manager.name in self.agents:
            raise ConfigError(f"crew {name!r}: the manager {manager.name!r} is also a crew mate")
        if max_delegations < 0 or max_concurrency < 1:
            raise ConfigError(f"crew {name!r}: max_delegations >= 0, max_concurrency >= 1")
        self.manager = manager
        self.max_delegations = max_delegations
        self.max_concurrency = max_concurrency
        self.max_cost_usd = max_cost_usd
        self.max_turns = max_turns or TURNS_PER_TASK * len(self.tasks)
        self.verbose = verbose
        self.router = router
        self.prompts = prompts or CrewPrompts()
        mates = [*self.agents.values(), *([manager] if manager else [])]
        servers = {id(server): server for agent in mates for server in agent.mcp_servers}
        self.mcp_servers: list[Any] = list(servers.values())
        self._connections = SharedConnections(self.mcp_servers)

    def __repr__(self) -> str:
        return f"Crew({self.name!r}, {self.process.value}, {len(self.tasks)} tasks)"

    @classmethod
    def from_yaml(cls, path: str | Path, **registries: Any) -> Crew:
        """A crew from YAML in CrewAI's layout (see :mod:`agentrig.crews.loader`);
        ``tools=``, ``output_types=`` and ``guardrails=`` resolve the names it uses, and
        ``knowledge=`` (with ``tenant=``) backs its ``knowledge_search`` tools."""
        return cls(**crew_arguments(path, **registries))

    @property
    def inputs(self) -> list[str]:
        """The kickoff inputs the tasks' and the agents' texts name."""
        names = [name for task in self.tasks for name in task.inputs]
        names += [name for agent in self.agents.values() for name in _agent_inputs(agent)]
        return list(dict.fromkeys(names))

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"crew {self.name!r} has no task {name!r}: {[t.name for t in self.tasks]}")

    # --- running ------------------------------------------------------------------------

    async def kickoff(self, inputs: Mapping[str, Any] | None = None) -> CrewResult:
        """Run the crew on ``inputs`` (the values of the tasks' ``{placeholders}``)."""
        return await self._run(self.new_state(inputs), _ignore)

    def kickoff_streamed(self, inputs: Mapping[str, Any] | None = None) -> CrewStream:
        """Start the crew in a task; iterate ``.events()``; ``.result`` is set at the end."""
        state = self.new_state(inputs)
        return CrewStream.start(lambda emit: self._run(state, emit))

    async def kickoff_for_each(self, inputs: Sequence[Mapping[str, Any]]) -> list[CrewResult]:
        """One kickoff per set of inputs, run concurrently; results in the same order."""
        states = [self.new_state(each) for each in inputs]  # every input checked first
        return list(await asyncio.gather(*(self._run(state, _ignore) for state in states)))

    async def resume(self, state: CrewState) -> CrewResult:
        """Continue a paused (or failed) crew after ``state.approve``/``state.revise``;
        completed tasks keep their outputs and are not run again."""
        return await self._run(self._check(state), _ignore)

    def resume_streamed(self, state: CrewState) -> CrewStream:
        checked = self._check(state)
        return CrewStream.start(lambda emit: self._run(checked, emit))

    def new_state(self, inputs: Mapping[str, Any] | None = None) -> CrewState:
        """A fresh state for ``inputs``; a missing input is an error naming it."""
        inputs = dict(inputs or {})
        missing = [name for name in self.inputs if name not in inputs]
        if missing:
            raise MissingInput(
                f"crew {self.name!r} needs the input{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(n) for n in missing)}; got {sorted(inputs) or 'none'}"
            )
        for task in self.tasks:
            task.render(inputs)
        records = {
            task.name: TaskRecord(task.name, self._performer_name(task)) for task in self.tasks
        }
        return CrewState(crew=self.name, inputs=inputs, tasks=records)

    def _check(self, state: CrewState) -> CrewState:
        if state.crew != self.name:
            raise AgentrigError(f"the state is of crew {state.crew!r}, not {self.name!r}")
        expected = [task.name for task in self.tasks]
        if list(state.tasks) != expected:
            raise AgentrigError(
                f"the state's tasks {list(state.tasks)} are not crew {self.name!r}'s {expected}: "
                "the crew definition changed since the state was saved"
            )
        for record in state.tasks.values():
            if record.status in ("failed", "timed_out") or (
                record.status == "skipped" and state.status == "failed"
            ):
                record.status, record.error = "pending", None  # a failed crew is retried
        return state

    def _performer_name(self, task: Task) -> str:
        if self.process is Process.hierarchical:
            return self.manager.name if self.manager else "manager"
        return task.agent.name if task.agent else ""

    def _manager(self, router: Any) -> Agent:
        if self.manager is not None:
            return self.manager
        roles = getattr(getattr(router, "settings", None), "roles", {})
        return Agent(
            name="manager",
            role=MANAGER_ROLE,
            goal=MANAGER_GOAL,
            backstory=MANAGER_BACKSTORY,
            model="manager" if "manager" in roles else "default",
            allow_delegation=True,
        )

    async def _run(self, state: CrewState, emit: Any) -> CrewResult:
        if not self.mcp_servers:
            return await self._execute(state, emit)
        async with self._connections.use():  # shared by concurrent kickoffs
            return await self._execute(state, emit)

    async def _execute(self, state: CrewState, emit: Any) -> CrewResult:
        if self.verbose:
            emit = _verbose(emit)
        router = self.router or default_router()
        budget = None if self.max_cost_usd is None else math.ceil(self.max_cost_usd * 1e6)
        meter = CrewMeter(max_turns=self.max_turns, max_cost_micros=budget)
        agents = {name: _with_inputs(agent, state.inputs) for name, agent in self.agents.items()}
        kick = Kickoff(
            crew=self.name,
            state=state,
            meter=meter,
            router=router,
            prompts=self.prompts,
            emit=emit,
            agents=agents,
            max_delegations=self.max_delegations,
        )
        manager = self._manager(router) if self.process is Process.hierarchical else None
        tasks = {task.name: task for task in self.tasks}
        state.status, state.error = "running", None
        emit(CrewStarted(self.name, state.inputs, list(tasks)))

        async def run(name: str) -> None:
            task = tasks[name]
            context = self._context_text(name, state)
            performer = manager or (agents[task.agent.name] if task.agent else None)
            assert performer is not None  # checked at construction
            await TaskExecution(kick, task, performer, context).run()

        concurrency = self.max_concurrency if self.process is Process.parallel else 1
        stopped = await schedule(list(tasks), self.needs, state.tasks, run, concurrency=concurrency)
        return self._result(state, stopped)

    def _context_text(self, name: str, state: CrewState) -> str:
        entry = self.prompts.context_entry
        return "\n\n".join(
            entry.format(task=ref, output=state.tasks[ref].raw) for ref in self.context[name]
        )

    def _result(self, state: CrewState, stopped: CrewLimitReached | None) -> CrewResult:
        outputs = [output_of(task, state.tasks[task.name]) for task in self.tasks]
        failed = [o.task for o in outputs if o.status in ("failed", "timed_out")]
        waiting = state.interruptions
        state.reason = None
        if stopped is not None:
            state.status, state.error, state.reason = "failed", str(stopped), stopped.reason
        elif waiting:
            state.status = "paused"
        elif failed:
            state.status = "failed"
            errors = "; ".join(f"{o.task}: {o.error}" for o in outputs if o.task in failed)
            state.error = f"tasks {failed} did not complete ({errors})"
        else:
            state.status = "completed"
        usage = sum((o.usage for o in outputs), Usage())
        last = outputs[-1]
        return CrewResult(
            output=last.raw if last.status == "completed" else "",
            structured=last.structured if last.status == "completed" else None,
            tasks_output=outputs,
            usage=usage,
            cost_micros=sum(o.cost_micros for o in outputs),
            status=state.status,  # type: ignore[arg-type]
            state=state,
            error=state.error,
            reason=state.reason,
            interruptions=waiting,
        )


def _agent_inputs(agent: Agent) -> list[str]:
    return [
        name for text in (agent.role, agent.goal, agent.backstory) for name in placeholders(text)
    ]


def _with_inputs(agent: Agent, inputs: Mapping[str, Any]) -> Agent:
    """``agent`` with the inputs filled into its role, goal and backstory (as CrewAI does)."""
    if not _agent_inputs(agent):
        return agent
    where = f"agent {agent.name!r}"
    texts = {
        key: fill(getattr(agent, key), inputs, where=where) for key in ("role", "goal", "backstory")
    }
    return agent.clone(**texts)


def _ignore(event: CrewEvent) -> None:
    return None


def _verbose(emit: Any) -> Any:
    from rich.console import Console

    from agentrig.crews.progress import describe

    console = Console(stderr=True, highlight=False)

    def both(event: CrewEvent) -> None:
        line = describe(event)
        if line:
            console.print(line, markup=False)
        emit(event)

    return both


def _agents(crew: str, given: Sequence[Agent], tasks: Sequence[Task]) -> dict[str, Agent]:
    """The crew mates by name: those given, then the tasks' agents not among them."""
    agents: dict[str, Agent] = {}
    for agent in [*given, *(task.agent for task in tasks if task.agent is not None)]:
        known = agents.setdefault(agent.name, agent)
        if known is not agent:
            raise ConfigError(f"crew {crew!r} has two different agents named {agent.name!r}")
    return agents
