"""Flows as background jobs: start a run, drive it in a worker, decide on it, read it back.

``FlowRuns.start`` checks the inputs with ``flow.new_run`` (a missing, unknown or mistyped
input is an error naming it, before anything is stored), stores the run and enqueues a
``run_flow`` job, so it runs wherever the job layer runs jobs: the server's own workers,
or ``agentrig worker`` processes on Redis. The job drives the stored record with
``flow.resume``, and the engine writes it at every step boundary (a worker that dies loses
at most the step it was on; the job taken over continues from there, and
``GET /api/v1/flows/runs/{id}`` shows the steps finished so far). A run that pauses for a
person waits until ``approve``, ``revise`` or ``reply`` has decided everything it waits
for, and is then queued again.

``queued`` is a status of the row only: the ``FlowRun`` record says what the engine
knows (``running`` for a fresh run, ``paused`` with its decisions taken), and the row says
that a job is to drive it. The job moves the row from ``queued`` to ``running`` before it
drives the record, and a decision reads and writes the record in one transaction holding
the row, conditional on ``paused``: of two reviewers deciding at once, the second sees the
first's decision (and a 409 once the run was queued again), so the run is queued once and
no decision is lost. A bad decision (a target that does not wait, a reply to a review)
raises before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, NoReturn

from agentrig.errors import AgentrigError
from agentrig.flows import FlowRun, NotResumable
from agentrig.flows.catalog import FlowCatalog
from agentrig.jobs.crew_runs import RunNotWaiting
from agentrig.jobs.queue import JobQueue
from agentrig.jobs.runner import Handler, PermanentJobError
from agentrig.store.flow_runs import FlowRunStore, StoredFlowRun
from agentrig.store.jobs import Job

RUN_FLOW = "run_flow"
QUEUED, RUNNING, PAUSED, FAILED = "queued", "running", "paused", "failed"


def step_resource(step: dict[str, Any]) -> dict[str, Any]:
    """A finished step as the API shows it: its cost in dollars, not micro-dollars."""
    shown = {key: value for key, value in step.items() if key != "cost_micros"}
    return {**shown, "cost_usd": step.get("cost_micros", 0) / 1e6}


def run_resource(stored: StoredFlowRun) -> dict[str, Any]:
    """A run as the API shows it: status, current state, variables, the history with each
    step's usage and cost, what waits for a decision, and the totals."""
    run = FlowRun.from_json(stored.data)
    return {
        "id": stored.id,
        "object": "flow.run",
        "flow": stored.flow,
        "status": stored.status,
        "current_state": run.current,
        "inputs": run.inputs,
        "variables": run.variables,
        "output": run.output if stored.status == "completed" else None,
        "history": [step_resource(step.to_json()) for step in run.history],
        "interruptions": [asdict(i) for i in run.waiting] if stored.status == PAUSED else [],
        "steps": stored.steps,
        "usage": run.usage.model_dump(),  # the paused step's too
        "cost_usd": run.cost_micros / 1e6,
        "error": run.error,
        "reason": run.reason,
        "job_id": stored.job_id,
        "created_at": int(stored.created_at.timestamp()),
        "updated_at": int(stored.updated_at.timestamp()),
        "finished_at": int(stored.finished_at.timestamp()) if stored.finished_at else None,
    }


class FlowRuns:
    """The flow runs of a server or worker: ``catalog`` builds the flows, ``runs`` keeps
    the records, ``queue`` carries the jobs (``None`` in a worker, which only runs them)."""

    def __init__(
        self, catalog: FlowCatalog, runs: FlowRunStore, queue: JobQueue | None = None
    ) -> None:
        self.catalog = catalog
        self.runs = runs
        self.queue = queue

    async def start(self, tenant: str, flow_name: str, inputs: dict[str, Any]) -> StoredFlowRun:
        """Store a queued run of ``flow_name`` on ``inputs`` and enqueue it."""
        run = self.catalog.get(flow_name, tenant).new_run(inputs, tenant=tenant)
        await self.runs.create(run.to_json(), status=QUEUED)
        return await self._enqueue(tenant, run.run_id)

    async def approve(self, tenant: str, run_id: str, target: str | None) -> StoredFlowRun | None:
        return await self._decide(tenant, run_id, lambda run: run.approve(target))

    async def revise(
        self, tenant: str, run_id: str, target: str | None, feedback: str
    ) -> StoredFlowRun | None:
        return await self._decide(tenant, run_id, lambda run: run.revise(target, feedback))

    async def reply(
        self, tenant: str, run_id: str, text: str, target: str | None = None
    ) -> StoredFlowRun | None:
        return await self._decide(tenant, run_id, lambda run: run.reply(text, target))

    async def _decide(
        self, tenant: str, run_id: str, decide: Callable[[FlowRun], None]
    ) -> StoredFlowRun | None:
        """Record a decision on a paused run; once none is left waiting, queue it again.
        ``None`` if there is no such run."""

        def change(stored: StoredFlowRun) -> tuple[dict[str, Any], str]:
            if stored.status != PAUSED:
                raise RunNotWaiting(
                    f"flow run {run_id} is {stored.status}, not paused for a decision"
                )
            run = FlowRun.from_json(stored.data)
            decide(run)  # nothing waits for it: AgentrigError or ValueError, nothing written
            return run.to_json(), PAUSED if run.waiting else QUEUED

        stored = await self.runs.change(run_id, tenant, change)
        if stored is None or stored.status == PAUSED:
            return stored
        return await self._enqueue(tenant, run_id)

    async def _enqueue(self, tenant: str, run_id: str) -> StoredFlowRun:
        if self.queue is None:
            raise AgentrigError("this process runs flow jobs; it does not queue them")
        job = await self.queue.enqueue(RUN_FLOW, tenant, {"run_id": run_id})
        await self.runs.set_job(run_id, job.id)
        stored = await self.runs.get(run_id, tenant)
        assert stored is not None
        return stored

    async def execute(self, job: Job) -> dict[str, Any]:
        """The ``run_flow`` job: drive the stored run to its end or its next pause."""
        run_id = str(job.payload.get("run_id", ""))
        stored = await self.runs.get(run_id, job.tenant)
        if stored is None:
            raise PermanentJobError(f"no flow run {run_id!r}")
        if stored.status not in (QUEUED, RUNNING):  # a retry of a job that already finished
            return {"run_id": run_id, "status": stored.status}
        try:
            run = FlowRun.from_json(stored.data)
        except AgentrigError as exc:  # written by a newer agentrig: left as it is
            raise PermanentJobError(str(exc)) from None
        try:
            flow = self.catalog.get(stored.flow, job.tenant)
        except AgentrigError as exc:  # its YAML went wrong, or it is gone
            await self._fail(run, f"{type(exc).__name__}: {exc}", "not_runnable")
        run.status = RUNNING  # what the engine sets first; the row leaves queued with it
        if not await self.runs.save(run.to_json(), only_if=(QUEUED, RUNNING)):
            return {"run_id": run_id, "status": "moved"}  # decided or finished meanwhile
        try:
            result = await flow.resume(run, store=self.runs)
        except NotResumable as exc:  # the flow changed under the stored run
            await self._fail(run, str(exc), "not_runnable")
        except Exception as exc:  # retried by the job layer from the last step boundary
            if job.attempts >= job.max_attempts:
                await self._fail(run, f"{type(exc).__name__}: {exc}", "error")
            raise
        return {"run_id": run_id, "status": result.status}

    async def _fail(self, run: FlowRun, error: str, reason: str) -> NoReturn:
        """Store the run (as of its last step boundary) failed, and fail the job for good."""
        run.status, run.error, run.reason = FAILED, error, reason
        await self.runs.save(run.to_json(), only_if=(QUEUED, RUNNING))
        raise PermanentJobError(error)

    def handlers(self) -> dict[str, Handler]:
        return {RUN_FLOW: self.execute}
