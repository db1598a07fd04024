"""Crews as background jobs: start a run, run it in a worker, review it, read it back.

``CrewRuns.start`` checks the inputs (a missing one is an error before anything is
stored), stores the run ``queued`` with its fresh ``CrewState`` and enqueues a
``run_crew`` job, so it runs wherever the job layer runs jobs: the server's own workers,
or ``agentrig worker`` processes on Redis. The job resumes the stored state, writes it
back after every task (a worker that dies loses at most the task it was on, and
``GET /api/v1/crews/runs/{id}`` shows the tasks finished so far), and stores the outcome:
``completed``, ``failed`` (with the partial results) or ``paused`` for a review, which
``approve``/``revise`` decide and queue again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from agentrig.crews import CrewResult, CrewState, TaskFinished
from agentrig.crews.catalog import CrewCatalog
from agentrig.errors import AgentrigError, ConfigError
from agentrig.items import new_id
from agentrig.jobs.queue import JobQueue
from agentrig.jobs.runner import Handler, PermanentJobError
from agentrig.store.crew_runs import PAUSED, QUEUED, RUNNING, CrewRun, CrewRunStore
from agentrig.store.jobs import Job
from agentrig.usage import Usage

RUN_CREW = "run_crew"


class RunNotWaiting(AgentrigError):
    """A decision for a run that is not paused (it is running, or has ended)."""


def _totals(state: CrewState) -> tuple[int, int, int]:
    usage = sum((Usage(**record.usage) for record in state.tasks.values()), Usage())
    cost = sum(record.cost_micros for record in state.tasks.values())
    return usage.input_tokens, usage.output_tokens, cost


def run_resource(run: CrewRun) -> dict[str, Any]:
    """A run as the API shows it: status, inputs, per-task outputs, usage and cost."""
    state = CrewState.from_json(run.state)
    tasks = []
    for record in state.tasks.values():
        tasks.append(
            {
                "task": record.name,
                "agent": record.agent,
                "status": record.status,
                "raw": record.raw,
                "structured": record.structured,
                "attempts": record.attempts,
                "delegations": record.delegations,
                "usage": Usage(**record.usage).model_dump(),
                "cost_usd": record.cost_micros / 1e6,
                "duration": round(record.duration, 3),
                "error": record.error,
            }
        )
    last = tasks[-1] if tasks else None
    done = last is not None and last["status"] == "completed"
    usage = Usage(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    return {
        "id": run.id,
        "object": "crew.run",
        "crew": run.crew,
        "status": run.status,
        "inputs": state.inputs,
        "output": last["raw"] if done else None,
        "structured": last["structured"] if done else None,
        "tasks": tasks,
        "interruptions": [asdict(i) for i in state.interruptions] if run.status == PAUSED else [],
        "usage": usage.model_dump(),
        "cost_usd": run.cost_micros / 1e6,
        "error": run.error,
        "reason": state.reason,
        "job_id": run.job_id,
        "created_at": int(run.created_at.timestamp()),
        "updated_at": int(run.updated_at.timestamp()),
        "finished_at": int(run.finished_at.timestamp()) if run.finished_at else None,
    }


class CrewRuns:
    """The crew runs of a server or worker: ``catalog`` builds the crews, ``runs`` keeps
    the rows, ``queue`` carries the jobs (``None`` in a worker, which only runs them)."""

    def __init__(
        self, catalog: CrewCatalog, runs: CrewRunStore, queue: JobQueue | None = None
    ) -> None:
        self.catalog = catalog
        self.runs = runs
        self.queue = queue

    async def start(self, tenant: str, crew_name: str, inputs: dict[str, Any]) -> CrewRun:
        """Store a queued run of ``crew_name`` on ``inputs`` and enqueue it."""
        state = self.catalog.get(crew_name, tenant).new_state(inputs)
        run_id = new_id("crun")
        await self.runs.create(tenant, run_id, crew_name, state.to_json())
        return await self._enqueue(tenant, run_id)

    async def save_paused(self, tenant: str, result: CrewResult) -> str:
        """Keep a crew that paused outside the job layer (a ``crew:<name>`` response) as a
        run, so it can be reviewed and continued here; its id."""
        run_id = new_id("crun")
        await self.runs.create(
            tenant,
            run_id,
            result.state.crew,
            result.state.to_json(),
            status=PAUSED,
            result=result.to_json(),
            totals=_totals(result.state),
        )
        return run_id

    async def approve(self, tenant: str, run_id: str, task: str) -> CrewRun | None:
        return await self._decide(tenant, run_id, lambda state: state.approve(task))

    async def revise(self, tenant: str, run_id: str, task: str, feedback: str) -> CrewRun | None:
        return await self._decide(tenant, run_id, lambda state: state.revise(task, feedback))

    async def _decide(self, tenant: str, run_id: str, decide: Any) -> CrewRun | None:
        """Record a reviewer's decision on a paused run; once none is left waiting, queue
        it again. ``None`` if there is no such run."""
        run = await self.runs.get(run_id, tenant)
        if run is None:
            return None
        if run.status != PAUSED:
            raise RunNotWaiting(f"crew run {run_id} is {run.status}, not paused for a review")
        state = CrewState.from_json(run.state)
        decide(state)  # an unknown task or one not waiting: AgentrigError, nothing stored
        status = PAUSED if state.interruptions else QUEUED
        if not await self.runs.update(
            run_id, only_if=(PAUSED,), status=status, state=state.to_json(), totals=_totals(state)
        ):
            raise RunNotWaiting(f"crew run {run_id} was decided or resumed meanwhile")
        if status == PAUSED:
            return await self.runs.get(run_id, tenant)
        return await self._enqueue(tenant, run_id)

    async def _enqueue(self, tenant: str, run_id: str) -> CrewRun:
        if self.queue is None:
            raise AgentrigError("this process runs crew jobs; it does not queue them")
        job = await self.queue.enqueue(RUN_CREW, tenant, {"run_id": run_id})
        await self.runs.set_job(run_id, job.id)
        run = await self.runs.get(run_id, tenant)
        assert run is not None
        return run

    async def execute(self, job: Job) -> dict[str, Any]:
        """The ``run_crew`` job: run the stored state to its end or its next pause."""
        run_id = str(job.payload.get("run_id", ""))
        run = await self.runs.get(run_id, job.tenant)
        if run is None:
            raise PermanentJobError(f"no crew run {run_id!r}")
        if run.status not in (QUEUED, RUNNING):  # a retry of a job that already finished
            return {"run_id": run_id, "status": run.status}
        try:
            crew = self.catalog.get(run.crew, job.tenant)
            state = CrewState.from_json(run.state)
            stream = crew.resume_streamed(state)
        except (ConfigError, AgentrigError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            await self.runs.update(run_id, only_if=(QUEUED, RUNNING), status="failed", error=error)
            raise PermanentJobError(error) from None
        await self.runs.update(run_id, only_if=(QUEUED, RUNNING), status=RUNNING)
        try:
            async for event in stream.events():
                if isinstance(event, TaskFinished):  # a checkpoint: finished tasks are kept
                    await self.runs.update(
                        run_id,
                        only_if=(RUNNING,),
                        status=RUNNING,
                        state=state.to_json(),
                        totals=_totals(state),
                    )
        except Exception as exc:  # retried by the job layer from the last checkpoint
            if job.attempts >= job.max_attempts:
                error = f"{type(exc).__name__}: {exc}"
                await self.runs.update(run_id, only_if=(RUNNING,), status="failed", error=error)
            raise
        result = stream.result
        await self.runs.update(
            run_id,
            only_if=(RUNNING,),
            status=result.status,
            state=result.state.to_json(),
            result=result.to_json(),
            error=result.error,
            totals=_totals(result.state),
        )
        return {"run_id": run_id, "status": result.status}

    def handlers(self) -> dict[str, Handler]:
        return {RUN_CREW: self.execute}
