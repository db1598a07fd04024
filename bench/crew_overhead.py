"""Orchestration overhead per crew task: agentrig's crews against CrewAI, zero-latency models.

The workload is the same for both contenders (CrewAI's side is ``bench/crew_peer_crewai.py``,
which runs in its own virtualenv): N tasks, "Task i: give a one-word status for item i." with
expected output "One word.", two agents (Researcher, Writer) taking turns, and a model that
answers at once. What is left is the framework: prompts, the agent loop, delegation, context
passing, task records and events. The figure is one kickoff's wall time / N, in µs per task.

Processes:

* ``sequential``: task i by agent i % 2, one model call ("done") each; every task gets the
  previous one's output as context. N model calls per kickoff.
* ``parallel``: tasks 0..N-2 independent, the last takes all their outputs as context. agentrig
  runs them ``Process.parallel`` with its default ``max_concurrency`` (4); CrewAI runs each
  ``async_execution`` task in a thread of its own. N model calls.
* ``hierarchical``: a manager with a model of its own delegates every task once
  (``delegate_work`` to the two coworkers in turn), the coworker answers at once and the
  manager's second call answers "done". 3N model calls.

agentrig's models are ``ScriptedModel`` s holding exactly the turns one kickoff needs; CrewAI's
is a ``BaseLLM`` subclass returning canned ReAct text. Agents, models and a fresh crew are
built outside the timer for every run; only the kickoff is timed (``await crew.kickoff()`` for
agentrig, ``crew.kickoff()`` for CrewAI). Each run is checked: agentrig's crew must complete
with exactly the expected model calls and every script used up, CrewAI's must return N task
outputs with the expected calls and no network attempt; a mismatch fails the benchmark.

Each (contender, process, N) runs in its own process: one untimed warm-up kickoff, then
``--runs`` timed kickoffs; its figure is the median run / N. The parent repeats that
``--rounds`` times, alternating which contender goes first, and reports the median over
rounds. Targets: for every process and N, agentrig's cost per task is at most a tenth of
CrewAI's; for every process, agentrig's per-task cost at N=100 is at most 1.5x its N=10 one.

Run: ``.venv/bin/python bench/crew_overhead.py [--tasks 10 100] [--rounds 3] [--runs 3]``
(``--install-crewai`` once makes the CrewAI virtualenv; ``--profile`` with ``--contender
agentrig`` prints a cProfile of the timed kickoffs to stderr). Flows against CrewAI's flows:
``bench/flow_overhead.py``, which shares this file's helpers and CrewAI virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

PROCESSES = ("sequential", "parallel", "hierarchical")
CONTENDERS = ("agentrig", "crewai")
CREWAI_PIN = "crewai==1.15.30"
CREWAI_VENV = Path(tempfile.gettempdir()) / "agentrig-bench-crewai"
PEER = Path(__file__).resolve().with_name("crew_peer_crewai.py")
ROLES = ("Researcher", "Writer")
CALLS_PER_TASK = {"sequential": 1, "parallel": 1, "hierarchical": 3}
RATIO_TARGET = 0.1  # agentrig / CrewAI, per task
SCALE_TARGET = 1.5  # agentrig at the largest N / at the smallest N, per task


# --- the agentrig contender -----------------------------------------------------------------


def build_agentrig(process: str, n_tasks: int) -> tuple[Any, list[Any]]:
    """A fresh crew for one kickoff, and its models (to check their scripts were used up)."""
    from agentrig import Agent
    from agentrig.crews import Crew, Process, Task
    from agentrig.testing import ScriptedModel, text, tool_call

    names = [role.lower() for role in ROLES]
    hierarchical = process == "hierarchical"
    # Who answers each task: the task's agent, or the coworker the manager delegates it to.
    shares = [sum(1 for i in range(n_tasks) if i % len(ROLES) == k) for k in range(len(ROLES))]
    models = [
        ScriptedModel([text("done")] * share, name=name)
        for name, share in zip(names, shares, strict=True)
    ]
    agents = [
        Agent(
            name=name,
            role=role,
            goal=f"Produce the {name}'s one-word answer",
            backstory=f"A {name} who always answers in one word.",
            model=model,
        )
        for name, role, model in zip(names, ROLES, models, strict=True)
    ]
    tasks: list[Any] = []
    for i in range(n_tasks):
        last = i == n_tasks - 1
        tasks.append(
            Task(
                description=f"Task {i}: give a one-word status for item {i}.",
                expected_output="One word.",
                name=f"task_{i}",
                agent=None if hierarchical else agents[i % len(agents)],
                context=list(tasks) if process == "parallel" and last else None,
            )
        )
    extra: dict[str, Any] = {}
    if hierarchical:
        turns: list[Any] = []
        for i in range(n_tasks):
            delegated = f"Delegated work item: Task {i}"
            context = f"Answer 'Task {i}' in one word."
            coworker = names[i % len(names)]
            turns += [
                tool_call("delegate_work", coworker=coworker, task=delegated, context=context)
            ]
            turns += [text("done")]
        manager_model = ScriptedModel(turns, name="manager")
        models.append(manager_model)
        extra["manager"] = Agent(
            name="manager",
            role="Crew Manager",
            goal="Get every task done by the right coworker",
            backstory="A manager who delegates each task and reports the answer.",
            model=manager_model,
        )
    crew = Crew("bench", agents=agents, tasks=tasks, process=Process(process), **extra)
    return crew, models


async def run_agentrig(process: str, n_tasks: int, profiler: cProfile.Profile | None) -> float:
    crew, models = build_agentrig(process, n_tasks)
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    result = await crew.kickoff()
    elapsed = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
    expected = CALLS_PER_TASK[process] * n_tasks
    left = sum(len(model.turns) for model in models)
    if result.status != "completed" or result.usage.requests != expected or left:
        raise AssertionError(
            f"agentrig {process} N={n_tasks}: status {result.status!r} ({result.error}), "
            f"{result.usage.requests} model calls (expected {expected}), {left} turns unused"
        )
    return elapsed


def child(args: argparse.Namespace) -> None:
    """One agentrig measurement; prints JSON in the peer script's shape."""
    from agentrig import __version__ as version

    process, n_tasks = args.process, args.tasks[0]
    profiler = cProfile.Profile() if args.profile else None

    async def measure() -> list[float]:
        await run_agentrig(process, n_tasks, None)  # warm-up, untimed
        return [await run_agentrig(process, n_tasks, profiler) for _ in range(args.runs)]

    runs = asyncio.run(measure())
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(40)
    calls = CALLS_PER_TASK[process] * n_tasks
    payload = {
        "framework": "agentrig",
        "version": version,
        "process": process,
        "tasks": n_tasks,
        "runs": [round(run, 6) for run in runs],
        "per_task_us": round(statistics.median(runs) / n_tasks * 1e6, 1),
        "llm_calls": [{"total": calls} for _ in runs],
        "python": sys.version.split()[0],
    }
    print(json.dumps(payload))


# --- the parent: spawn the contenders round-robin, then report ------------------------------

Key = tuple[str, str, int]  # contender, process, N


def model_calls(payload: dict[str, Any]) -> list[int]:
    """Model calls per timed run, from either contender's JSON."""
    return [
        counts["total"] if "total" in counts else counts["manager"] + counts["worker"]
        for counts in payload["llm_calls"]
    ]


def spawn(name: str, process: str, n_tasks: int, args: argparse.Namespace) -> dict[str, Any]:
    """One contender process's JSON; raises with its stderr when it fails."""
    if name == "agentrig":
        command = [sys.executable, str(Path(__file__).resolve()), "--contender", "agentrig"]
    else:
        command = [args.crewai_python, str(PEER)]
    command += ["--process", process, "--tasks", str(n_tasks), "--runs", str(args.runs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:]) or "no output"
        raise RuntimeError(f"{name} {process} N={n_tasks} failed:\n{tail}")
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    expected = CALLS_PER_TASK[process] * n_tasks
    calls = model_calls(payload)
    if any(count != expected for count in calls) or payload.get("network_attempts"):
        raise RuntimeError(
            f"{name} {process} N={n_tasks}: model calls per run {calls} (expected {expected}), "
            f"network attempts {payload.get('network_attempts', 0)}"
        )
    return payload


def collect(args: argparse.Namespace, progress: Console) -> dict[Key, list[dict[str, Any]]]:
    results: dict[Key, list[dict[str, Any]]] = {}
    for n_tasks in args.tasks:
        for index in range(args.rounds):
            shift = index % len(args.contenders)
            order = args.contenders[shift:] + args.contenders[:shift]
            for process in args.processes:
                for name in order:
                    payload = spawn(name, process, n_tasks, args)
                    results.setdefault((name, process, n_tasks), []).append(payload)
                    figure = f"{payload['per_task_us']:,.1f} µs/task"
                    progress.print(
                        f"N={n_tasks} round {index + 1} {process} {name}: {figure}",
                        highlight=False,
                    )
    return results


def medians(results: dict[Key, list[dict[str, Any]]]) -> dict[Key, float]:
    return {
        key: statistics.median(payload["per_task_us"] for payload in rounds)
        for key, rounds in results.items()
    }


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def table(args: argparse.Namespace, results: dict[Key, list[dict[str, Any]]]) -> Table:
    middle = medians(results)
    out = Table(title="crew orchestration overhead, µs per task (median over rounds)")
    columns = ("process", "tasks", "model calls", "agentrig µs/task", "agentrig min-max")
    columns += ("crewai µs/task", "crewai min-max", "crewai / agentrig")
    for column in columns:
        out.add_column(column, justify="left" if column == "process" else "right")
    for process in args.processes:
        for n_tasks in args.tasks:
            cells = [process, str(n_tasks), str(CALLS_PER_TASK[process] * n_tasks)]
            for name in ("agentrig", "crewai"):
                rounds = results.get((name, process, n_tasks))
                if not rounds:
                    cells += ["-", "-"]
                    continue
                every = [run / n_tasks * 1e6 for payload in rounds for run in payload["runs"]]
                value = middle[name, process, n_tasks]
                cells += [fmt(value), f"{fmt(min(every))}-{fmt(max(every))}"]
            ours = middle.get(("agentrig", process, n_tasks))
            theirs = middle.get(("crewai", process, n_tasks))
            cells.append(f"{theirs / ours:,.1f}x" if ours and theirs else "-")
            out.add_row(*cells)
        out.add_section()
    return out


def verdict(
    label: str, value: float | None, reference: float | None, limit: float, unit: str = "task"
) -> str:
    if not value or not reference:
        return f"{label}: not measured, SKIP"
    ratio = value / reference
    outcome = "[green]met[/green]" if ratio <= limit else "[red]missed[/red]"
    numbers = f"{fmt(value)} / {fmt(reference)} µs per {unit} = {ratio:.3f}"
    return f"{label}: {numbers} (target <= {limit:g}): {outcome}"


def targets(args: argparse.Namespace, results: dict[Key, list[dict[str, Any]]]) -> list[str]:
    middle = medians(results)
    small, large = args.tasks[0], args.tasks[-1]
    lines = []
    for process in args.processes:
        for n_tasks in args.tasks:
            ours = middle.get(("agentrig", process, n_tasks))
            theirs = middle.get(("crewai", process, n_tasks))
            label = f"{process} N={n_tasks}: agentrig / crewai"
            lines.append(verdict(label, ours, theirs, RATIO_TARGET))
        if large != small:
            ours_large = middle.get(("agentrig", process, large))
            ours_small = middle.get(("agentrig", process, small))
            label = f"{process}: agentrig N={large} / agentrig N={small}"
            lines.append(verdict(label, ours_large, ours_small, SCALE_TARGET))
    return lines


def crewai_version(python: str) -> str:
    code = "import importlib.metadata as m, sys; print(m.version('crewai'), sys.version.split()[0])"
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except OSError:
        return "not found"
    if done.returncode != 0:
        return "not found"
    version, python_version = done.stdout.split()
    return f"{version} (python {python_version})"


def header(args: argparse.Namespace) -> list[str]:
    installed = {dist.name: dist.version for dist in metadata.distributions()}
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    return [
        f"python {platform.python_version()} on {platform.platform()}, {machine} at start",
        f"versions: agentrig {installed.get('agentrig', '-')}, "
        f"crewai {crewai_version(args.crewai_python)} at {args.crewai_python}",
        f"N: {', '.join(map(str, args.tasks))}; rounds: {args.rounds}; per process: 1 warm-up "
        f"kickoff, then {args.runs} timed kickoffs (median / N); timeout {args.timeout:g} s",
    ]


def ensure_crewai(args: argparse.Namespace, console: Console) -> None:
    wanted = any(name.startswith("crewai") for name in args.contenders)
    if Path(args.crewai_python).exists() or not wanted:
        return
    if not args.install_crewai:
        sys.exit(f"{args.crewai_python} not found: --install-crewai makes {CREWAI_VENV}")
    console.print(f"installing {CREWAI_PIN} into {CREWAI_VENV}", style="dim")
    subprocess.run([sys.executable, "-m", "venv", str(CREWAI_VENV)], check=True)
    pip = [str(CREWAI_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, CREWAI_PIN], check=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="timed kickoffs per process")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per process")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PROCESSES + CONTENDERS,
        default=[],
        help="only these processes and/or contenders",
    )
    parser.add_argument("--install-crewai", action="store_true", help=f"make {CREWAI_VENV}")
    parser.add_argument(
        "--crewai-python", default=str(CREWAI_VENV / "bin" / "python"), help="CrewAI's python"
    )
    parser.add_argument("--contender", choices=("agentrig",), help=argparse.SUPPRESS)
    parser.add_argument("--process", choices=PROCESSES, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="cProfile (with --contender)")
    args = parser.parse_args()
    if min(args.tasks) < 1 or args.rounds < 1 or args.runs < 1:
        parser.error("--tasks, --rounds and --runs must be at least 1")
    args.tasks = sorted(set(args.tasks))
    args.processes = [p for p in PROCESSES if p in args.only] or list(PROCESSES)
    args.contenders = [c for c in CONTENDERS if c in args.only] or list(CONTENDERS)
    if args.contender and not args.process:
        parser.error("--contender needs --process")
    return args


def main() -> None:
    args = parse()
    if args.contender:
        child(args)
        return
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 140)
    ensure_crewai(args, console)
    for line in header(args):
        console.print(line, highlight=False)
    results = collect(args, Console(stderr=True))
    console.print(table(args, results))
    for line in targets(args, results):
        console.print(line, highlight=False)


if __name__ == "__main__":
    main()
