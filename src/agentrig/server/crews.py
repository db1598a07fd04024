"""``/api/v1/crews``: the served crews, crew runs as background jobs, and their review.

``POST /api/v1/crews/{name}/kickoff`` checks the inputs and answers at once (202) with a
``queued`` run that the job layer runs (the server's workers, or ``agentrig worker`` on
Redis); ``GET /api/v1/crews/runs/{id}`` follows it: status, per-task outputs, usage and
cost, and for a ``paused`` run what waits for a review, which ``approve`` or ``revise``
decides (the run is queued again once nothing is left waiting). Scoped to the API key's
tenant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agentrig.crews import MissingInput
from agentrig.crews.catalog import UnknownCrew
from agentrig.errors import AgentrigError, ConfigError
from agentrig.jobs.crew_runs import RunNotWaiting, run_resource
from agentrig.server.auth import tenant_of
from agentrig.server.errors import APIError, not_found
from agentrig.server.openapi import PathId, errors
from agentrig.server.wire import ID_PATTERN

router = APIRouter(prefix="/api/v1/crews", tags=["crews"])


class KickoffRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="The tasks' {placeholders}.")


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, description="The task under review.")


class ReviseRequest(ApproveRequest):
    feedback: str = Field(min_length=1, max_length=100_000, description="What to change.")


def _state(request: Request) -> Any:
    return request.app.state.server


@router.get("", responses=errors(401))
async def list_crews(request: Request, tenant: str = Depends(tenant_of)) -> dict[str, Any]:
    crews = _state(request).crews
    try:
        data = [crews.describe(name) for name in crews.names()]
    except ConfigError as exc:
        raise APIError(500, str(exc), type="server_error") from None
    return {"object": "list", "data": data}


@router.post("/{name}/kickoff", status_code=202, responses=errors(400, 401, 404))
async def kickoff(
    name: PathId, body: KickoffRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    try:
        run = await _state(request).crew_runs.start(tenant, name, body.inputs)
    except UnknownCrew as exc:
        raise APIError(404, str(exc), param="name", code="not_found") from None
    except MissingInput as exc:
        raise APIError(400, str(exc), param="inputs", code="missing_input") from None
    except ConfigError as exc:
        raise APIError(500, str(exc), type="server_error") from None
    return JSONResponse(run_resource(run), status_code=202)


@router.get("/runs", responses=errors(400, 401))
async def list_runs(
    request: Request,
    crew: str | None = Query(default=None, max_length=200, pattern=ID_PATTERN),
    limit: int = Query(default=20, ge=1, le=100),
    tenant: str = Depends(tenant_of),
) -> dict[str, Any]:
    runs = await _state(request).crew_runs.runs.list(tenant, crew=crew, limit=limit)
    return {"object": "list", "data": [run_resource(run) for run in runs]}


@router.get("/runs/{run_id}", responses=errors(401, 404))
async def get_run(run_id: PathId, request: Request, tenant: str = Depends(tenant_of)) -> Any:
    run = await _state(request).crew_runs.runs.get(run_id, tenant)
    if run is None:
        raise not_found("crew run", run_id)
    return run_resource(run)


@router.post("/runs/{run_id}/approve", status_code=202, responses=errors(400, 401, 404, 409))
async def approve(
    run_id: PathId, body: ApproveRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    decide = _state(request).crew_runs.approve(tenant, run_id, body.task)
    return await decision(decide, "crew run", run_id, run_resource, param="task")


@router.post("/runs/{run_id}/revise", status_code=202, responses=errors(400, 401, 404, 409))
async def revise(
    run_id: PathId, body: ReviseRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    decide = _state(request).crew_runs.revise(tenant, run_id, body.task, body.feedback)
    return await decision(decide, "crew run", run_id, run_resource, param="task")


async def decision(
    decide: Awaitable[Any],
    what: str,
    run_id: str,
    resource: Callable[[Any], dict[str, Any]],
    *,
    param: str,
) -> JSONResponse:
    """The answer to a decision on a crew or flow run: 202 with the run (queued again once
    nothing waits), 409 if it is not paused, 400 if ``param`` names nothing waiting."""
    try:
        run = await decide
    except RunNotWaiting as exc:
        raise APIError(409, str(exc), param="run_id", code="run_not_paused") from None
    except (AgentrigError, ValueError) as exc:  # no such task, or not waiting
        raise APIError(400, str(exc), param=param) from None
    if run is None:
        raise not_found(what, run_id)
    return JSONResponse(resource(run), status_code=202)
