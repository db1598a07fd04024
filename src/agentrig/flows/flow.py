"""``Flow``: states that run crews, agents and functions, joined by conditional transitions.

Declare the states, then the transitions between them; ``run`` checks the graph, stores
a new run and drives it to a final state (or a pause), writing its record at every step
boundary to the configured database (SQLite in the data directory by default,
PostgreSQL when ``database_url`` is set), so ``resume(run_id)`` continues it in any
process, after a crash or a person's decision. A flow object is a description: it holds
no run, and serves concurrent runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agentrig.errors import AgentrigError, ConfigError
from agentrig.flows.conditions import Condition, as_condition, named_variables
from agentrig.flows.engine import NoRecorder, NotResumable, Recorder, drive
from agentrig.flows.graph import FlowGraph, FlowState
from agentrig.flows.recording import StoreRecorder
from agentrig.flows.records import FlowResult, FlowRun
from agentrig.flows.streaming import FlowStream
from agentrig.store.flow_runs import FlowRunStore


class FlowInputError(AgentrigError, ValueError):
    """Inputs that do not make the flow's variables: missing, unknown or of a wrong type."""


class Flow:
    """A named graph of states. ``variables`` is a pydantic model (typed variables, their
    defaults) or a dict of defaults; ``max_steps`` bounds a run's steps; ``router`` is the
    agents' model router; runs are stored in ``database_url`` (else the configured
    database) unless ``persist=False``."""

    def __init__(
        self,
        name: str,
        *,
        variables: type[BaseModel] | Mapping[str, Any] | None = None,
        max_steps: int = 100,
        router: Any = None,
        description: str = "",
        database_url: str | None = None,
        persist: bool = True,
    ) -> None:
        if max_steps < 1:
            raise ConfigError(f"flow {name!r}: max_steps >= 1")
        self.name = name
        self.description = description
        self.graph = FlowGraph(name)
        self.max_steps = max_steps
        self.router = router
        self.database_url = database_url
        self.persist = persist
        self.model: type[BaseModel] | None = None
        self.defaults: dict[str, Any] = {}
        if isinstance(variables, type) and issubclass(variables, BaseModel):
            self.model = variables
            self.variable_names: set[str] = set(variables.model_fields)
        elif variables is None or isinstance(variables, Mapping):
            self.defaults = dict(variables or {})
            self.variable_names = set(self.defaults)
        else:
            raise ConfigError(f"flow {name!r}: variables is a pydantic model or a dict")

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, {len(self.graph.states)} states)"

    @classmethod
    def from_yaml(cls, path: str | Path, **registries: Any) -> Flow:
        """A flow from YAML (see :mod:`agentrig.flows.loader`)."""
        from agentrig.flows.loader import load_flow

        return load_flow(path, **registries)

    # --- declaring ----------------------------------------------------------------------

    def state(
        self,
        name: str,
        *,
        run: Any = None,
        initial: bool = False,
        final: bool = False,
        max_visits: int | None = None,
        updates: Mapping[str, str] | bool | None = None,
        output_to: str | None = None,
        input: str | None = None,
        description: str = "",
    ) -> FlowState:
        """Add a state that runs ``run`` (a Crew, an Agent, a function of a
        :class:`~agentrig.flows.FlowContext`, or ``Human(prompt)``); a final state may run
        nothing. ``updates``/``output_to`` carry its outputs into the variables."""
        for variable in [output_to, *(updates if isinstance(updates, Mapping) else [])]:
            if variable is not None and self.variable_names and variable not in self.variable_names:
                raise ConfigError(
                    f"flow {self.name!r}: state {name!r} sets the unknown variable "
                    f"{variable!r}; variables: {sorted(self.variable_names)}"
                )
        state = FlowState(
            name, run, initial, final, max_visits, updates, output_to, input, description
        )
        self.graph.add_state(state)
        return state

    def transition(
        self,
        source: str,
        target: str,
        *,
        when: Condition | Callable[..., bool] | None = None,
        priority: int = 0,
    ) -> Flow:
        """Go from ``source`` to ``target`` when ``when`` holds (always, if not given);
        the highest ``priority`` is tried first, ties in declaration order."""
        condition = as_condition(when)
        unknown = [
            name
            for name in named_variables(condition)
            if self.variable_names and name not in self.variable_names
        ]
        if unknown:
            raise ConfigError(
                f"flow {self.name!r}: the condition of {source!r} -> {target!r} names the "
                f"unknown variables {unknown}; variables: {sorted(self.variable_names)}"
            )
        self.graph.add_transition(source, target, condition, priority)
        return self

    def validate(self) -> str:
        """Check the graph (see :meth:`FlowGraph.check`); the initial state's name."""
        return self.graph.check()

    def mermaid(self) -> str:
        """The graph as Mermaid text (``agentrig flow show NAME`` prints it)."""
        return self.graph.mermaid()

    @property
    def inputs(self) -> list[str]:
        """The variables a run must be given (those without a default)."""
        if self.model is None:
            return []
        return [name for name, f in self.model.model_fields.items() if f.is_required()]

    # --- variables ----------------------------------------------------------------------

    def validate_variables(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` checked against the model (as JSON data); ``ValidationError`` if not."""
        if self.model is None:
            return dict(values)
        return self.model.model_validate(dict(values)).model_dump(mode="json")

    def typed(self, variables: Mapping[str, Any]) -> Any:
        """The stored variables as the flow's model (or a dict copy)."""
        if self.model is None:
            return dict(variables)
        return self.model.model_validate(dict(variables))

    def new_run(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        tenant: str = "default",
        run_id: str | None = None,
    ) -> FlowRun:
        """A fresh run on ``inputs``; an input that is missing, unknown or of the wrong type
        is an error naming it, before anything is stored."""
        initial = self.validate()
        inputs = dict(inputs or {})
        unknown = sorted(
            key for key in inputs if self.variable_names and key not in self.variable_names
        )
        if unknown:
            raise FlowInputError(
                f"flow {self.name!r} has no variables {unknown}; its variables: "
                f"{sorted(self.variable_names)}"
            )
        try:
            variables = self.validate_variables({**self.defaults, **inputs})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise FlowInputError(f"flow {self.name!r}: bad inputs ({problems})") from None
        run = FlowRun(self.name, inputs, variables, initial, tenant=tenant)
        if run_id is not None:
            run.run_id = run_id
        return run

    # --- running ------------------------------------------------------------------------

    async def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        tenant: str = "default",
        run_id: str | None = None,
        store: FlowRunStore | None = None,
    ) -> FlowResult:
        """Run the flow on ``inputs`` (its variables' values) to its end or a pause."""
        run = self.new_run(inputs, tenant=tenant, run_id=run_id)
        recorder = await self._recorder(store)
        return await drive(self, run, _ignore, recorder)

    def run_streamed(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        tenant: str = "default",
        run_id: str | None = None,
        store: FlowRunStore | None = None,
    ) -> FlowStream:
        """Start the flow in a task; iterate ``.events()``; ``.result`` is set at the end."""
        run = self.new_run(inputs, tenant=tenant, run_id=run_id)

        async def go(emit: Callable[[Any], None]) -> FlowResult:
            recorder = await self._recorder(store)
            return await drive(self, run, emit, recorder)

        return FlowStream.start(go)

    async def resume(self, run: FlowRun | str, *, store: FlowRunStore | None = None) -> FlowResult:
        """Continue a stopped run (a record, or its id in the store): a paused one once
        its decisions are taken, one whose process died, or a failed one (its failed
        state runs again). Finished steps are not run again."""
        recorder = await self._recorder(store)
        record = await self._resumable(run, recorder)
        return await drive(self, record, _ignore, recorder)

    def resume_streamed(
        self, run: FlowRun | str, *, store: FlowRunStore | None = None
    ) -> FlowStream:
        async def go(emit: Callable[[Any], None]) -> FlowResult:
            recorder = await self._recorder(store)
            record = await self._resumable(run, recorder)
            return await drive(self, record, emit, recorder)

        return FlowStream.start(go)

    async def get_run(
        self, run_id: str, *, tenant: str | None = None, store: FlowRunStore | None = None
    ) -> FlowRun | None:
        """A stored run of this flow by id (``None`` if there is none)."""
        store = store or await self._store()
        stored = await store.get(run_id, tenant)
        if stored is None or stored.flow != self.name:
            return None
        return FlowRun.from_json(stored.data)

    async def runs(
        self,
        *,
        status: str | None = None,
        tenant: str = "default",
        limit: int = 20,
        store: FlowRunStore | None = None,
    ) -> list[FlowRun]:
        """This flow's stored runs, newest first (in ``status`` if given)."""
        store = store or await self._store()
        stored = await store.list(tenant, flow=self.name, status=status, limit=limit)
        return [FlowRun.from_json(row.data) for row in stored]

    async def save_run(self, run: FlowRun, *, store: FlowRunStore | None = None) -> None:
        """Store a run's record (after deciding on it, to resume it elsewhere)."""
        await StoreRecorder(store or await self._store()).save(run)

    async def _resumable(self, run: FlowRun | str, recorder: Recorder) -> FlowRun:
        if isinstance(run, str):
            if not isinstance(recorder, StoreRecorder):
                raise NotResumable(f"flow {self.name!r} does not persist runs: resume a FlowRun")
            found = await self.get_run(run, store=recorder.store)
            if found is None:
                raise NotResumable(f"flow {self.name!r} has no stored run {run!r}")
            run = found
        if run.flow != self.name:
            raise NotResumable(f"run {run.run_id} is of flow {run.flow!r}, not {self.name!r}")
        if run.status == "completed":
            raise NotResumable(f"flow run {run.run_id} has completed already")
        if run.current not in self.graph.states:
            raise NotResumable(
                f"flow run {run.run_id} stands at state {run.current!r}, which flow "
                f"{self.name!r} no longer has: {list(self.graph.states)}"
            )
        self.validate()
        if run.status == "paused" and run.waiting:
            raise NotResumable(
                f"flow run {run.run_id} still waits for decisions on "
                f"{[i.target for i in run.waiting]}: approve, revise or reply first"
            )
        return run

    async def _recorder(self, store: FlowRunStore | None) -> Recorder:
        if store is not None:
            return StoreRecorder(store)
        if not self.persist:
            return NoRecorder()
        return StoreRecorder(await self._store())

    async def _store(self) -> FlowRunStore:
        from agentrig.config import load_settings
        from agentrig.store.shared import shared_database

        if self.database_url is None:  # the configured database, read once: settings cost
            settings = load_settings()  # 0.4 ms per read
            if settings.database_url is None:  # SQLite in the data directory
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.database_url = settings.effective_database_url
        return FlowRunStore(await shared_database(self.database_url))


def _ignore(event: Any) -> None:
    return None
