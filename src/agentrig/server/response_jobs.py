"""Background crew and flow responses as jobs: ``background: true`` with ``model:
"crew:<name>"`` or ``"flow:<name>"``.

A crew or a flow can work for many minutes, so its background response is not a task of
the server process (as a model's is) but a ``crew_response`` or ``flow_response`` job of
the job layer: it survives the server's restart and runs on ``agentrig worker`` processes
with Redis. The job carries the request, the checked crew state or flow run and the
conversation; it completes the stored ``queued`` response as the server would have. A
``cancel`` marks the stored response, and the job's watcher (:class:`BackgroundResponses`)
cancels the crew or flow within a quarter of a second. A crew job retried after its
worker died starts the crew again; a flow job resumes the run from its last step boundary.
:class:`ResponseServing` also gives the handlers of the crew and flow runs of
``/api/v1/crews`` and ``/api/v1/flows``, so the server and ``agentrig worker`` run the
same ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from agentrig.crews import CrewState
from agentrig.crews.catalog import CrewCatalog
from agentrig.flows import FlowRun
from agentrig.flows.catalog import FlowCatalog
from agentrig.jobs.crew_runs import CrewRuns
from agentrig.jobs.flow_runs import FlowRuns
from agentrig.jobs.runner import Handler, PermanentJobError
from agentrig.server.background import RUNNING, BackgroundResponses
from agentrig.server.responses import Turn, _in_background
from agentrig.server.wire import CreateResponseRequest
from agentrig.store.jobs import Job
from agentrig.store.responses import ResponseStore

CREW_RESPONSE = "crew_response"
FLOW_RESPONSE = "flow_response"


@dataclass
class ResponseServing:
    """What completing a crew's or a flow's response needs, in the server or a worker."""

    responses: ResponseStore
    crews: CrewCatalog
    crew_runs: CrewRuns
    flows: FlowCatalog
    flow_runs: FlowRuns
    metrics: Any = None

    def handlers(self) -> dict[str, Handler]:
        """The crew runs', the flow runs' and the background responses' handlers."""
        handlers = self.crew_runs.handlers() | self.flow_runs.handlers()
        return handlers | response_handlers(self)


def response_job(turn: Turn) -> tuple[str, dict[str, Any]] | None:
    """The job type and payload of a queued background crew or flow response (``None``
    for a model's or an agent's, which a task of the server completes)."""
    payload = {
        "response_id": turn.id,
        "request": turn.body.model_dump(mode="json", exclude_unset=True),
        "conversation_id": turn.conversation_id,
    }
    if turn.crew_state is not None:
        return CREW_RESPONSE, payload | {"crew_state": turn.crew_state.to_json()}
    if turn.flow_run is not None:
        return FLOW_RESPONSE, payload | {"flow_run": turn.flow_run.to_json()}
    return None


def response_handlers(serving: ResponseServing) -> dict[str, Handler]:
    async def complete(job: Job) -> dict[str, Any]:
        payload = job.payload
        stored = await serving.responses.get_response(
            job.tenant, str(payload.get("response_id")), include_input=True
        )
        if stored is None:
            raise PermanentJobError(f"no response {payload.get('response_id')!r}")
        if stored.status not in RUNNING:  # cancelled, or a retry of a finished job
            return {"response_id": stored.id, "status": stored.status}
        turn = Turn(
            job.tenant,
            CreateResponseRequest.model_validate(payload["request"]),
            [],
            list(stored.input or []),
            payload.get("conversation_id"),
            id=stored.id,
            created_at=int(stored.resource["created_at"]),
        )
        if job.type == CREW_RESPONSE:
            turn.crew_state = CrewState.from_json(payload["crew_state"])
        else:
            turn.flow_run = FlowRun.from_json(payload["flow_run"])
        watcher = BackgroundResponses(serving.responses)
        watcher.start(turn.id, _in_background(serving, turn, start_from=RUNNING))  # type: ignore[arg-type]
        task = watcher.tasks.get(turn.id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await watcher.aclose()
        return {"response_id": turn.id, "status": turn.status}

    return {CREW_RESPONSE: complete, FLOW_RESPONSE: complete}
