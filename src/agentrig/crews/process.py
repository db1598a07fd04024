"""Processes: the order in which a crew's tasks run, and what each one receives.

One scheduler serves all three. ``sequential`` and ``hierarchical`` chain every task to the
one before it (one at a time; a failure skips the rest); ``parallel`` follows the tasks'
``context`` as a dependency graph and starts every task whose dependencies are done, up to
``max_concurrency`` at once; a failed task's dependents are skipped while independent
branches finish. A task waiting for a person blocks only the tasks after it.
"""

from __future__ import annotations

import asyncio
import graphlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import StrEnum

from agentrig.crews.meter import CrewLimitReached
from agentrig.crews.state import TaskRecord
from agentrig.crews.task import Task
from agentrig.errors import ConfigError

DONE_BADLY = ("failed", "timed_out", "skipped")


class Process(StrEnum):
    sequential = "sequential"
    hierarchical = "hierarchical"
    parallel = "parallel"


def context_names(tasks: Sequence[Task], process: Process) -> dict[str, list[str]]:
    """Each task's context, by name: the tasks it names, or in a sequential or hierarchical
    crew, when it names none, the task before it. References are checked here."""
    names = [task.name for task in tasks]
    by_identity = {id(task): task.name for task in tasks}
    found: dict[str, list[str]] = {}
    for index, task in enumerate(tasks):
        if task.context is None:
            chained = process is not Process.parallel and index > 0
            found[task.name] = [names[index - 1]] if chained else []
            continue
        refs = []
        for ref in task.context:
            name = ref if isinstance(ref, str) else by_identity.get(id(ref))
            if name is None or name not in names:
                shown = ref if isinstance(ref, str) else getattr(ref, "name", "") or repr(ref)
                raise ConfigError(
                    f"task {task.name!r} has {shown!r} in its context, which is not a task of "
                    f"this crew: {names}"
                )
            if name == task.name:
                raise ConfigError(f"task {task.name!r} names itself in its context")
            refs.append(name)
        found[task.name] = refs
    return found


def dependencies(tasks: Sequence[Task], process: Process) -> dict[str, list[str]]:
    """What each task waits for; a circle in a parallel crew is an error naming its tasks."""
    context = context_names(tasks, process)
    if process is not Process.parallel:
        order = [task.name for task in tasks]
        for index, name in enumerate(order):
            later = [ref for ref in context[name] if order.index(ref) > index]
            if later:
                raise ConfigError(
                    f"task {name!r} needs the output of {later}, which run after it in a "
                    f"{process.value} crew: reorder the tasks or use Process.parallel"
                )
        return {name: order[index - 1 : index] for index, name in enumerate(order)}
    try:
        tuple(graphlib.TopologicalSorter(context).static_order())
    except graphlib.CycleError as exc:
        circle = " -> ".join(exc.args[1])
        raise ConfigError(f"the tasks' contexts form a circle: {circle}") from None
    return context


def runnable(record: TaskRecord) -> bool:
    """Not started yet, or waiting for a person who has now decided."""
    if record.status == "pending":
        return True
    waiting = record.status in ("awaiting_review", "awaiting_approval")
    return waiting and (record.decision is not None or record.feedback is not None)


async def schedule(
    order: Sequence[str],
    needs: Mapping[str, Sequence[str]],
    records: Mapping[str, TaskRecord],
    run: Callable[[str], Awaitable[None]],
    *,
    concurrency: int,
) -> CrewLimitReached | None:
    """Run the tasks as their dependencies allow; return why the crew stopped early, if it
    did (``run`` raising: a budget or the turn limit), after the running tasks end."""
    running: dict[asyncio.Future[None], str] = {}
    stopped: CrewLimitReached | None = None

    def start_ready() -> None:
        changed = True
        while changed:
            changed = False
            for name in order:
                record = records[name]
                if not runnable(record) or name in running.values():
                    continue
                failed = [dep for dep in needs[name] if records[dep].status in DONE_BADLY]
                if failed:
                    record.status = "skipped"
                    record.error = f"skipped: {failed[0]} did not complete"
                    changed = True
                elif len(running) < concurrency and all(
                    records[dep].status == "completed" for dep in needs[name]
                ):
                    running[asyncio.ensure_future(run(name))] = name

    try:
        while True:
            if stopped is None:
                start_ready()
            if not running:
                break
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                running.pop(finished)
                error = finished.exception()
                if isinstance(error, CrewLimitReached):
                    stopped = stopped or error
                elif error is not None:
                    raise error
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    if stopped is not None:
        for name in order:
            if records[name].status == "pending":
                records[name].status = "skipped"
                records[name].error = f"not run: {stopped}"
    return stopped
