"""Background crew responses as jobs: ``background: true`` with ``model: "crew:<name>"``.

A crew can work for many minutes, so its background response is not a task of the server
process (as a model's is) but a ``crew_response`` job of the job layer: it survives the
server's restart and runs on ``agentrig worker`` processes with Redis. The job carries
the request, the crew's checked state and the conversation; it completes the stored
``queued`` response as the server would have. A ``cancel`` marks the stored response, and
the job's watcher (:class:`BackgroundResponses`) cancels the crew within a quarter of a
second. A job retried after its worker died starts the crew again; ``/api/v1/crews``
runs, checkpointed after every task, are the way for work too long to repeat.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from agentrig.crews import CrewState
from agentrig.crews.catalog import CrewCatalog
from agentrig.jobs.crew_runs import CrewRuns
from agentrig.jobs.runner import Handler, PermanentJobError
from agentrig.server.background import RUNNING, BackgroundResponses
from agentrig.server.responses import Turn, _in_background
from agentrig.server.wire import CreateResponseRequest
from agentrig.store.jobs import Job
from agentrig.store.responses import ResponseStore

CREW_RESPONSE = "crew_response"


@dataclass
class CrewServing:
    """What completing a crew's response needs, in the server or in a worker."""

    responses: ResponseStore
    crews: CrewCatalog
    crew_runs: CrewRuns
    metrics: Any = None


def crew_response_job(turn: Turn) -> dict[str, Any]:
    """The job payload of a queued background crew response."""
    return {
        "response_id": turn.id,
        "request": turn.body.model_dump(mode="json", exclude_unset=True),
        "crew_state": turn.crew_state.to_json(),
        "conversation_id": turn.conversation_id,
    }


def crew_response_handlers(serving: CrewServing) -> dict[str, Handler]:
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
        turn.crew_state = CrewState.from_json(payload["crew_state"])
        watcher = BackgroundResponses(serving.responses)
        watcher.start(turn.id, _in_background(serving, turn, start_from=RUNNING))  # type: ignore[arg-type]
        task = watcher.tasks.get(turn.id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await watcher.aclose()
        return {"response_id": turn.id, "status": turn.status}

    return {CREW_RESPONSE: complete}
