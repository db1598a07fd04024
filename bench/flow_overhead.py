"""Per-step overhead of a flow: agentrig's flows against CrewAI's, N function states in a chain.

The workload is the same for every contender: N states (10 and 100 by default) in a chain,
state i going to state i+1 and the last one final, each a Python function adding one to a
``counter`` variable (a pydantic model's field). There is no model and no I/O in a step, so
what is left is the flow engine: the step loop, variables, events, transitions and, where a
contender persists, writing the run at every step. The figure is one run's wall time / N, in
µs per step.

Contenders:

* ``agentrig``: ``Flow("bench", variables=Counter, database_url="sqlite:///TMP/runs.db")``,
  ``flow.state(f"s{i}", run=step)`` and ``flow.transition`` (always); ``await flow.run()``
  writes the run when it starts and once at every step boundary (N + 1 writes, each
  committed before the next step: ``Database.write_now`` on the event loop's thread, or
  ``Database.write`` when another writer holds the lock). The file is fresh per process,
  in a temporary folder: the untimed warm-up run opens and migrates it, the timed runs add
  a run each.
* ``agentrig-nostore``: the same flow with ``persist=False`` (the engine alone, for scale).
* ``crewai``: a ``Flow[CounterState]`` of N ``async`` methods, ``@start`` then ``@listen``
  each on the one before, state in memory (its default); see ``bench/crew_peer_crewai.py``,
  which runs in CrewAI's own virtualenv (``--process flow``).
* ``crewai-persist``: the same class under ``@persist(SQLiteFlowPersistence(path))``, CrewAI's
  default backend pointed at a fresh file per process in a temporary folder: one row of the
  whole state per method (``--process flow-persist``).

A flow (or CrewAI's flow class) is built once per process; agentrig's timed call is
``await flow.run()``, CrewAI's ``await flow.kickoff_async()`` on a new instance made outside the
timer with ``suppress_flow_events=True`` (its console panels off). Each run is checked:
agentrig's must complete with N history entries, ``counter == N``, N + 1 writes and a stored
row that is completed with N steps; CrewAI's state must end with ``counter == N`` and, with
``@persist``, N rows for its id. A mismatch fails the benchmark.

Each (contender, N) runs in its own process: one untimed warm-up run, then ``--runs`` timed
runs; its figure is the median run / N. The parent repeats that ``--rounds`` times, rotating
which contender goes first, and reports the median over rounds. Target: agentrig, persisting
every step, costs at most 1/5 of CrewAI's per step, with and without CrewAI's ``@persist``.

Run: ``.venv/bin/python bench/flow_overhead.py [--steps 10 100] [--rounds 3] [--runs 3]``
(``--install-crewai`` once makes the CrewAI virtualenv, as for ``bench/crew_overhead.py``;
``--only agentrig crewai`` limits the contenders; ``--profile`` with ``--contender agentrig
--steps N`` prints cProfiles of the timed runs, the event loop's and the SQLite writer
thread's, to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import platform
import pstats
import sqlite3
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

from crew_overhead import CREWAI_VENV, PEER, crewai_version, ensure_crewai, fmt, verdict

CONTENDERS = ("agentrig", "agentrig-nostore", "crewai", "crewai-persist")
PEER_PROCESS = {"crewai": "flow", "crewai-persist": "flow-persist"}
LABELS = {
    "agentrig": "agentrig (SQLite)",
    "agentrig-nostore": "agentrig no store",
    "crewai": "crewai",
    "crewai-persist": "crewai @persist",
}
RATIO_TARGET = 0.2  # agentrig (persisting) / CrewAI, per step


# --- the agentrig contender -----------------------------------------------------------------


def build_agentrig(n_steps: int, url: str | None) -> Any:
    """The chain s0 -> s1 -> ... -> s{N-1} (final); ``url`` None: ``persist=False``."""
    from pydantic import BaseModel

    from agentrig.flows import Flow

    class Counter(BaseModel):
        counter: int = 0

    def step(context: Any) -> dict[str, int]:
        return {"counter": context.variables.counter + 1}

    flow = Flow(
        "bench",
        variables=Counter,
        max_steps=max(100, n_steps),
        database_url=url,
        persist=url is not None,
    )
    for i in range(n_steps):
        flow.state(f"s{i}", run=step, initial=i == 0, final=i == n_steps - 1)
    for i in range(n_steps - 1):
        flow.transition(f"s{i}", f"s{i + 1}")
    return flow


class Writes:
    """Counts the writes of a :class:`Database` (its ``write`` and the ``write_now`` that
    wrote, wrapped on the instance)."""

    def __init__(self, database: Any) -> None:
        self.database, self.count = database, 0
        write, write_now = database.write, database.write_now

        async def counted(work: Any) -> Any:
            self.count += 1
            return await write(work)

        def counted_now(statements: Any) -> Any:
            done = write_now(statements)
            self.count += done is not None
            return done

        database.write, database.write_now = counted, counted_now


async def run_agentrig(
    flow: Any, n_steps: int, writes: Writes | None, profilers: list[cProfile.Profile]
) -> tuple[float, float]:
    """One timed run, checked: (seconds, process CPU seconds)."""
    from agentrig.store.flow_runs import FlowRunStore

    before = writes.count if writes is not None else 0
    for profiler in profilers[:1]:  # the writer thread's is switched on in that thread
        profiler.enable()
    cpu, started = time.process_time(), time.perf_counter()
    result = await flow.run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    for profiler in profilers[:1]:
        profiler.disable()
    counter = result.variables.counter
    problems = []
    if result.status != "completed" or len(result.history) != n_steps or counter != n_steps:
        problems.append(
            f"status {result.status!r} ({result.error}), {len(result.history)} steps, "
            f"counter {counter}"
        )
    if writes is not None:
        written = writes.count - before
        row = await FlowRunStore(writes.database).get(result.run_id)
        if (
            written != n_steps + 1
            or row is None
            or (row.status, row.steps)
            != (
                "completed",
                n_steps,
            )
        ):
            stored = None if row is None else (row.status, row.steps)
            problems.append(f"{written} writes (expected {n_steps + 1}), stored {stored}")
    if problems:
        raise AssertionError(f"agentrig flow N={n_steps}: {'; '.join(problems)}")
    return elapsed, cpu


def stored_runs(path: Path) -> list[int]:
    """[completed runs, their steps in all] in the SQLite file."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        query = "SELECT count(*), coalesce(sum(steps), 0) FROM flow_runs WHERE status = ?"
        return list(connection.execute(query, ("completed",)).fetchone())


def child(args: argparse.Namespace) -> None:
    """One agentrig measurement; prints JSON in the peer script's shape."""
    from agentrig import __version__ as version
    from agentrig.store.shared import close_shared_databases, shared_database

    n_steps, persist = args.steps[0], args.contender == "agentrig"
    profilers = [cProfile.Profile(), cProfile.Profile()] if args.profile else []
    folder = tempfile.TemporaryDirectory(prefix="agentrig-flow-")
    path = Path(folder.name) / "runs.db"
    url = f"sqlite:///{path}" if persist else None

    async def measure() -> tuple[list[tuple[float, float]], list[int]]:
        flow = build_agentrig(n_steps, url)
        writes = Writes(await shared_database(url)) if url is not None else None
        await run_agentrig(flow, n_steps, writes, [])  # warm-up, untimed
        writer = getattr(writes.database, "_writer_thread", None) if writes else None
        if profilers and writer is not None:
            writer.submit(profilers[1].enable).result()
        runs = [await run_agentrig(flow, n_steps, writes, profilers) for _ in range(args.runs)]
        if profilers and writer is not None:
            writer.submit(profilers[1].disable).result()
        await close_shared_databases()
        return runs, stored_runs(path) if persist else [0, 0]

    with folder:
        runs, stored = asyncio.run(measure())
    if stored[0] != (args.runs + 1 if persist else 0):
        raise AssertionError(f"agentrig flow N={n_steps}: stored runs {stored}")
    for name, profiler in zip(("event loop", "SQLite writer thread"), profilers, strict=False):
        if profiler.getstats():
            print(f"=== {name}: {args.runs} timed runs of {n_steps} steps ===", file=sys.stderr)
            stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
            stats.sort_stats("cumulative").print_stats(35)
            stats.sort_stats("tottime").print_stats(25)
    payload = {
        "framework": "agentrig",
        "version": version,
        "process": args.contender,
        "steps": n_steps,
        "runs": [round(run[0], 6) for run in runs],
        "cpu": [round(run[1], 6) for run in runs],
        "per_step_us": round(statistics.median(run[0] for run in runs) / n_steps * 1e6, 1),
        "stored_runs": stored,
        "python": sys.version.split()[0],
    }
    print(json.dumps(payload))


# --- the parent: spawn the contenders round-robin, then report ------------------------------

Key = tuple[str, int]  # contender, N


def spawn(name: str, n_steps: int, args: argparse.Namespace) -> dict[str, Any]:
    """One contender process's JSON; raises with its stderr when it fails."""
    if name.startswith("agentrig"):
        command = [sys.executable, str(Path(__file__).resolve()), "--contender", name]
        command += ["--steps", str(n_steps)]
    else:
        command = [args.crewai_python, str(PEER), "--process", PEER_PROCESS[name]]
        command += ["--tasks", str(n_steps)]
    command += ["--runs", str(args.runs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:]) or "no output"
        raise RuntimeError(f"{name} N={n_steps} failed:\n{tail}")
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    counters = payload.get("counters", [n_steps] * args.runs)
    if any(c != n_steps for c in counters) or payload.get("network_attempts"):
        raise RuntimeError(
            f"{name} N={n_steps}: counters {counters} (expected {n_steps}), "
            f"network attempts {payload.get('network_attempts', 0)}"
        )
    return payload


def collect(args: argparse.Namespace, progress: Console) -> dict[Key, list[dict[str, Any]]]:
    results: dict[Key, list[dict[str, Any]]] = {}
    for n_steps in args.steps:
        for index in range(args.rounds):
            shift = index % len(args.contenders)
            for name in args.contenders[shift:] + args.contenders[:shift]:
                payload = spawn(name, n_steps, args)
                results.setdefault((name, n_steps), []).append(payload)
                cpu = statistics.median(payload["cpu"]) / n_steps * 1e6
                figure = f"{payload['per_step_us']:,.1f} µs/step (CPU {cpu:,.1f})"
                progress.print(f"N={n_steps} round {index + 1} {name}: {figure}", highlight=False)
    return results


def medians(results: dict[Key, list[dict[str, Any]]]) -> dict[Key, float]:
    return {
        key: statistics.median(payload["per_step_us"] for payload in rounds)
        for key, rounds in results.items()
    }


def table(args: argparse.Namespace, results: dict[Key, list[dict[str, Any]]]) -> Table:
    middle = medians(results)
    out = Table(title="flow overhead, µs per step (median over rounds)")
    columns = ("steps", "contender", "µs/step", "min-max", "CPU µs/step", "agentrig / this")
    for column in columns:
        out.add_column(column, justify="left" if column == "contender" else "right")
    for n_steps in args.steps:
        ours = middle.get(("agentrig", n_steps))
        for name in args.contenders:
            rounds = results[name, n_steps]
            every = [run / n_steps * 1e6 for payload in rounds for run in payload["runs"]]
            cpu = statistics.median(statistics.median(p["cpu"]) for p in rounds) / n_steps * 1e6
            value = middle[name, n_steps]
            ratio = f"{ours / value:.2f}" if ours and name.startswith("crewai") else "-"
            cells = [str(n_steps), LABELS[name], fmt(value), f"{fmt(min(every))}-{fmt(max(every))}"]
            out.add_row(*cells, fmt(cpu), ratio)
        out.add_section()
    return out


def targets(args: argparse.Namespace, results: dict[Key, list[dict[str, Any]]]) -> list[str]:
    middle = medians(results)
    lines = []
    for n_steps in args.steps:
        ours = middle.get(("agentrig", n_steps))
        for peer in ("crewai", "crewai-persist"):
            label = f"N={n_steps}: agentrig (SQLite) / {LABELS[peer]}"
            lines.append(verdict(label, ours, middle.get((peer, n_steps)), RATIO_TARGET, "step"))
    small, large = args.steps[0], args.steps[-1]
    for name in ("agentrig", "agentrig-nostore"):
        ours_small, ours_large = middle.get((name, small)), middle.get((name, large))
        if large != small and ours_small and ours_large:
            lines.append(
                f"{LABELS[name]} N={large} / N={small} per step: "
                f"{ours_large / ours_small:.2f} (no target)"
            )
    return lines


def header(args: argparse.Namespace) -> list[str]:
    installed = {dist.name: dist.version for dist in metadata.distributions()}
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    return [
        f"python {platform.python_version()} on {platform.platform()}, {machine} at start",
        f"versions: agentrig {installed.get('agentrig', '-')}, sqlalchemy "
        f"{installed.get('SQLAlchemy', installed.get('sqlalchemy', '-'))}, sqlite "
        f"{sqlite3.sqlite_version}, crewai {crewai_version(args.crewai_python)} at "
        f"{args.crewai_python}",
        f"N: {', '.join(map(str, args.steps))}; rounds: {args.rounds}; per process: 1 warm-up "
        f"run, then {args.runs} timed runs (median / N); SQLite files in {tempfile.gettempdir()}",
    ]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per process")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per process")
    parser.add_argument(
        "--only", nargs="+", choices=CONTENDERS, default=[], help="only these contenders"
    )
    parser.add_argument("--install-crewai", action="store_true", help=f"make {CREWAI_VENV}")
    parser.add_argument(
        "--crewai-python", default=str(CREWAI_VENV / "bin" / "python"), help="CrewAI's python"
    )
    parser.add_argument("--contender", choices=CONTENDERS[:2], help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help="cProfile (with --contender)")
    args = parser.parse_args()
    if min(args.steps) < 1 or args.rounds < 1 or args.runs < 1:
        parser.error("--steps, --rounds and --runs must be at least 1")
    args.steps = sorted(set(args.steps))
    args.contenders = [c for c in CONTENDERS if c in args.only] or list(CONTENDERS)
    return args


def main() -> None:
    args = parse()
    if args.contender:
        child(args)
        return
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    ensure_crewai(args, console)
    for line in header(args):
        console.print(line, highlight=False)
    results = collect(args, Console(stderr=True))
    console.print(table(args, results))
    for line in targets(args, results):
        console.print(line, highlight=False)


if __name__ == "__main__":
    main()
