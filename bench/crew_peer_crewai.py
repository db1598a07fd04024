"""Peer benchmark: CrewAI's orchestration overhead per task, with a zero-latency fake LLM.

What it measures: the wall time of one synchronous ``Crew.kickoff()`` over N tasks, divided by
N, when every LLM call returns a canned string instantly. What is left is CrewAI itself: prompt
building, the ReAct text parser, the event bus, tool selection and delegation, task output
handling and its per-task replay log (a SQLite file CrewAI writes on every task), and, for the
"parallel" variant, one thread per asynchronous task.

Processes (``--process``):

* ``sequential``: two agents alternate over the N tasks; each task is one LLM call that answers
  "Thought: I now can give a great answer\\nFinal Answer: done" at once.
* ``hierarchical``: the same two agents as coworkers plus CrewAI's own manager, built from
  ``manager_llm``. For every task the manager's first call delegates through the "Delegate work
  to coworker" tool (ReAct text: Action / Action Input), the coworker answers at once, and the
  manager's second call (after the Observation) gives the Final Answer: about 2N manager calls
  and N coworker calls per kickoff. The counts are in the output.
* ``parallel``: as sequential, but tasks 0..N-2 have ``async_execution=True`` (CrewAI runs each
  in its own thread, with no context from one another) and the last task is synchronous and
  takes all of their outputs as context. CrewAI refuses a crew ending in more than one async
  task, hence the last one, and refuses to run one Agent on two tasks at once, so here each
  task has its own Agent instance (roles still alternating).

The fake LLM subclasses ``crewai.llms.base_llm.BaseLLM`` and reports no native function calling,
so agents with tools go through CrewAI's text ReAct path. Agents, tasks and a fresh crew are
built outside the timer for every run; one untimed warm-up kickoff comes first. Telemetry,
tracing, memory, planning and verbose output are off; any attempt to open a network socket is
refused and counted (``network_attempts`` in the output; it should be 0). CrewAI's app data
(replay log, its CLI's key store) goes under ``$XDG_DATA_HOME``, set by default to a folder of
the benchmark's venv so the home directory stays clean.

Flows (``--process flow`` and ``flow-persist``, for ``bench/flow_overhead.py``; ``--tasks``
is then the number of steps N): a ``Flow[CounterState]`` class built once per process, with
``step_0`` a ``@start`` method and ``step_i`` ``@listen``-ing to ``step_{i-1}``, each an
``async def`` adding one to the pydantic state's ``counter`` (async: CrewAI runs a sync method
in a thread of its own, ``asyncio.to_thread``, at every step). ``flow-persist`` decorates the
class with ``@persist(SQLiteFlowPersistence(path))``, CrewAI's default backend pointed at a
fresh file in a temporary folder: one INSERT of the whole state per method, on a new sqlite3
connection under a file lock. Each run is a new instance (built outside the timer, with
``suppress_flow_events=True``, CrewAI's switch for its console panels, else two rich panels per
method); ``await flow.kickoff_async()`` is timed; the counter must be N and, persisting, the
file must hold N rows for the run's state id.

Runs only inside its own venv (it does not import agentrig)::

    python3 -m venv /tmp/agentrig-bench-crewai
    /tmp/agentrig-bench-crewai/bin/pip install 'crewai==1.15.*'
    /tmp/agentrig-bench-crewai/bin/python bench/crew_peer_crewai.py --process sequential \\
        --tasks 10 --runs 3

It prints one JSON object: {"framework": "crewai", "version", "process", "tasks", "runs"
(seconds per timed kickoff), "per_task_us" (median run / N, in microseconds), "llm_calls" (per
run: manager, worker and delegated coworker calls), "network_attempts", "python"}; for a flow
{"framework", "version", "process", "steps", "runs", "cpu" (process CPU seconds per run),
"per_step_us", "counters" and "persisted_rows" (per run), "network_attempts", "python"}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

# Before crewai is imported: it reads these at import and at kickoff.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
# Keeps the first-run trace collection and its consent prompt off, and stops CrewAI writing
# .crewai/last_run.json into the working directory (the flag gates nothing else in 1.15).
os.environ.setdefault("CREWAI_TESTING", "true")
os.environ.setdefault("XDG_DATA_HOME", "/tmp/agentrig-bench-crewai/state")
os.environ.setdefault("CREWAI_STORAGE_DIR", "crew_peer_crewai")

_NETWORK_ATTEMPTS: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _refuse(what: str) -> None:
    _NETWORK_ATTEMPTS.append(what)
    raise OSError(f"crew_peer_crewai: network refused ({what})")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family == socket.AF_UNIX:
        return _real_connect(self, address)
    _refuse(f"connect {address!r}")


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family == socket.AF_UNIX:
        return _real_connect_ex(self, address)
    _refuse(f"connect_ex {address!r}")
    return 1


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _refuse(f"getaddrinfo {host!r}")


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo

from crewai import Agent, Crew, Process, Task  # noqa: E402
from crewai import __version__ as CREWAI_VERSION  # noqa: E402
from crewai.flow.flow import Flow, FlowState, listen, start  # noqa: E402
from crewai.flow.persistence import SQLiteFlowPersistence, persist  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402

FINAL = "Thought: I now can give a great answer\nFinal Answer: done"
DELEGATED_MARKER = "Delegated work item"
ROLES = ("Researcher", "Writer")
_TASK_RE = re.compile(r"Current Task: (Task \d+)")


def _contents(messages: Any) -> list[tuple[str, str]]:
    if isinstance(messages, str):
        return [("user", messages)]
    out = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            content = str(content)
        out.append((str(message.get("role", "")), content))
    return out


class FakeLLM(BaseLLM):
    """Answers instantly with canned ReAct text; counts its calls.

    ``kind="worker"``: always a Final Answer. ``kind="manager"``: delegates once per task
    (no Observation in the conversation yet), then a Final Answer.
    """

    kind: str = "worker"
    coworkers: list[str] = []
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: int = PrivateAttr(default=0)
    _delegated: int = PrivateAttr(default=0)
    _delegations: int = PrivateAttr(default=0)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
        **kwargs: Any,
    ) -> str:
        contents = _contents(messages)
        if self.kind == "manager":
            # The system prompt's ReAct format mentions "Observation:" too: only an assistant
            # turn carrying one means the delegation already ran.
            if any(role == "assistant" and "Observation:" in text for role, text in contents):
                with self._lock:
                    self._calls += 1
                return FINAL
            with self._lock:
                self._calls += 1
                n = self._delegations
                self._delegations += 1
            match = next((m for m in (_TASK_RE.search(text) for _, text in contents) if m), None)
            task = match.group(1) if match else f"Task #{n}"
            action_input = json.dumps(
                {
                    "task": f"{DELEGATED_MARKER}: {task}",
                    "context": f"Answer '{task}' in one word.",
                    "coworker": self.coworkers[n % len(self.coworkers)],
                }
            )
            return (
                "Thought: I should hand this to a coworker\n"
                "Action: Delegate work to coworker\n"
                f"Action Input: {action_input}"
            )
        delegated = any(DELEGATED_MARKER in text for _, text in contents)
        with self._lock:
            self._calls += 1
            if delegated:
                self._delegated += 1
        return FINAL

    async def acall(self, messages: Any, *args: Any, **kwargs: Any) -> str:
        return self.call(messages, *args, **kwargs)

    def supports_function_calling(self) -> bool:
        return False

    def get_input_tokens_count(
        self, messages: Any, tools: Any = None, response_model: Any = None
    ) -> int:
        # BaseLLM's fallback is the same four-characters-a-token estimate, but logs a warning
        # on every call (the context-window preflight); a real provider has a native count.
        return (sum(len(text) for _, text in _contents(messages)) + 3) // 4

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"calls": self._calls, "delegated": self._delegated}


def build_crew(process: str, n_tasks: int) -> tuple[Crew, FakeLLM, FakeLLM | None]:
    worker_llm = FakeLLM(model="fake-worker")

    def make_agent(role: str) -> Agent:
        return Agent(
            role=role,
            goal=f"Produce the {role.lower()}'s one-word answer",
            backstory=f"A {role.lower()} who always answers in one word.",
            llm=worker_llm,
            allow_delegation=False,
            verbose=False,
        )

    hierarchical = process == "hierarchical"
    if process == "parallel":
        # CrewAI refuses to run one Agent's executor concurrently ("Executor is already
        # running"), so concurrent tasks need agents of their own: the two roles still
        # alternate, but each task gets a fresh Agent instance of its role.
        agents = [make_agent(ROLES[i % len(ROLES)]) for i in range(n_tasks)]
        task_agents: list[Agent | None] = list(agents)
    else:
        agents = [make_agent(role) for role in ROLES]
        task_agents = [None if hierarchical else agents[i % len(agents)] for i in range(n_tasks)]
    tasks = [
        Task(
            description=f"Task {i}: give a one-word status for item {i}.",
            expected_output="One word.",
            agent=task_agents[i],
            async_execution=process == "parallel" and i < n_tasks - 1,
        )
        for i in range(n_tasks)
    ]
    manager_llm: FakeLLM | None = None
    extra: dict[str, Any] = {}
    if hierarchical:
        manager_llm = FakeLLM(model="fake-manager", kind="manager", coworkers=list(ROLES))
        extra = {"process": Process.hierarchical, "manager_llm": manager_llm}
    else:
        extra = {"process": Process.sequential}
    crew = Crew(
        agents=agents,
        tasks=tasks,
        memory=False,
        planning=False,
        verbose=False,
        tracing=False,
        cache=False,
        **extra,
    )
    return crew, worker_llm, manager_llm


def run_once(process: str, n_tasks: int) -> tuple[float, dict[str, int]]:
    crew, worker_llm, manager_llm = build_crew(process, n_tasks)
    t0 = time.perf_counter()
    result = crew.kickoff()
    elapsed = time.perf_counter() - t0
    if len(result.tasks_output) != n_tasks:
        raise RuntimeError(f"expected {n_tasks} task outputs, got {len(result.tasks_output)}")
    worker = worker_llm.counts()
    calls = {
        "manager": manager_llm.counts()["calls"] if manager_llm else 0,
        "worker": worker["calls"],
        "delegated": worker["delegated"],
    }
    return elapsed, calls


# --- flows ----------------------------------------------------------------------------------


class CounterState(FlowState):
    counter: int = 0


def build_flow_class(n_steps: int, persistence: SQLiteFlowPersistence | None) -> type[Flow]:
    """``step_0`` (``@start``) then ``step_i`` listening to ``step_{i-1}``, each adding one."""
    namespace: dict[str, Any] = {"__module__": __name__}
    for i in range(n_steps):

        async def step(self: Flow[CounterState]) -> None:
            self.state.counter += 1

        step.__name__ = step.__qualname__ = f"step_{i}"
        namespace[step.__name__] = start()(step) if i == 0 else listen(f"step_{i - 1}")(step)
    flow_class = type(f"ChainFlow{n_steps}", (Flow[CounterState],), namespace)
    return persist(persistence)(flow_class) if persistence is not None else flow_class


async def run_flow_once(flow_class: type[Flow], n_steps: int, db_path: str | None) -> list[Any]:
    """One timed kickoff: [seconds, CPU seconds, the counter, rows persisted for the run]."""
    flow = flow_class(suppress_flow_events=True)
    cpu, started = time.process_time(), time.perf_counter()
    await flow.kickoff_async()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    counter, rows = flow.state.counter, 0
    if db_path is not None:
        with contextlib.closing(sqlite3.connect(db_path)) as connection:
            query = "SELECT count(*) FROM flow_states WHERE flow_uuid = ?"
            rows = connection.execute(query, (flow.state.id,)).fetchone()[0]
    if counter != n_steps or (db_path is not None and rows != n_steps):
        raise RuntimeError(f"flow of {n_steps} steps: counter {counter}, {rows} rows persisted")
    return [elapsed, cpu, counter, rows]


def flow_main(process: str, n_steps: int, n_runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="crewai-flow-") as folder:
        db_path = os.path.join(folder, "flow_states.db") if process == "flow-persist" else None
        backend = SQLiteFlowPersistence(db_path) if db_path is not None else None
        flow_class = build_flow_class(n_steps, backend)

        async def measure() -> list[list[Any]]:
            await run_flow_once(flow_class, n_steps, db_path)  # warm-up, untimed
            return [await run_flow_once(flow_class, n_steps, db_path) for _ in range(n_runs)]

        runs = asyncio.run(measure())
    return {
        "framework": "crewai",
        "version": CREWAI_VERSION,
        "process": process,
        "steps": n_steps,
        "runs": [round(run[0], 6) for run in runs],
        "cpu": [round(run[1], 6) for run in runs],
        "per_step_us": round(statistics.median(run[0] for run in runs) / n_steps * 1e6, 1),
        "counters": [run[2] for run in runs],
        "persisted_rows": [run[3] for run in runs],
        "network_attempts": len(_NETWORK_ATTEMPTS),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--process",
        choices=("sequential", "hierarchical", "parallel", "flow", "flow-persist"),
        default="sequential",
    )
    parser.add_argument("--tasks", type=int, default=10, help="tasks, or a flow's steps")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.runs < 1:
        parser.error("--tasks and --runs must be at least 1")
    if args.process.startswith("flow"):
        print(json.dumps(flow_main(args.process, args.tasks, args.runs)))
        return 0

    run_once(args.process, args.tasks)  # warm-up, untimed
    runs: list[float] = []
    calls: list[dict[str, int]] = []
    for _ in range(args.runs):
        elapsed, counts = run_once(args.process, args.tasks)
        runs.append(elapsed)
        calls.append(counts)

    print(
        json.dumps(
            {
                "framework": "crewai",
                "version": CREWAI_VERSION,
                "process": args.process,
                "tasks": args.tasks,
                "runs": [round(r, 6) for r in runs],
                "per_task_us": round(statistics.median(runs) / args.tasks * 1e6, 1),
                "llm_calls": calls,
                "network_attempts": len(_NETWORK_ATTEMPTS),
                "python": sys.version.split()[0],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
