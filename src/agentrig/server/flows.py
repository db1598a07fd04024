"""``/api/v1/flows``: the served flows, flow runs as background jobs, and people's decisions.

``GET /api/v1/flows/{name}`` describes a flow (states, transitions, inputs, its Mermaid
graph). ``POST /api/v1/flows/{name}/runs`` checks the inputs and answers at once (202)
with a ``queued`` run that the job layer drives (the server's workers, or ``agentrig
worker`` on Redis); ``GET /api/v1/flows/runs/{id}`` follows it: status, current state,
variables, the history with each step's usage and cost, and for a ``paused`` run what
waits for a person, which ``approve``, ``revise`` (a crew's review, an agent's tool calls)
or ``reply`` (a human step) decide; the run is queued again once nothing is left waiting.
Scoped to the API key's tenant. ``/runs`` is routed before ``/{name}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agentrig.errors import AgentrigError
from agentrig.flows import FlowInputError
from agentrig.flows.catalog import UnknownFlow
from agentrig.jobs.flow_runs import run_resource
from agentrig.server.auth import tenant_of
from agentrig.server.crews import decision
from agentrig.server.errors import APIError, not_found
from agentrig.server.openapi import PathId, errors
from agentrig.server.wire import ID_PATTERN

router = APIRouter(prefix="/api/v1/flows", tags=["flows"])
STATUSES = "^(queued|running|paused|completed|failed)$"


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="The flow's variables.")


class ApproveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="What is decided (a crew task, a tool call's id, a state); may be left "
        "out while a single decision waits.",
    )


class ReviseRequest(ApproveRequest):
    feedback: str = Field(min_length=1, max_length=100_000, description="What to change.")


class ReplyRequest(ApproveRequest):
    text: str = Field(min_length=1, max_length=100_000, description="The person's answer.")


def _state(request: Request) -> Any:
    return request.app.state.server


def _describe(request: Request, name: str) -> dict[str, Any]:
    try:
        return _state(request).flows.describe(name)
    except UnknownFlow as exc:
        raise APIError(404, str(exc), param="name", code="not_found") from None
    except AgentrigError as exc:  # the flow's YAML is wrong: the server's fault
        raise APIError(500, str(exc), type="server_error") from None


@router.get("", responses=errors(401))
async def list_flows(request: Request, tenant: str = Depends(tenant_of)) -> dict[str, Any]:
    names = _state(request).flows.names()
    return {"object": "list", "data": [_describe(request, name) for name in names]}


@router.get("/runs", responses=errors(400, 401))
async def list_runs(
    request: Request,
    status: str | None = Query(default=None, pattern=STATUSES),
    flow: str | None = Query(default=None, max_length=200, pattern=ID_PATTERN),
    limit: int = Query(default=20, ge=1, le=100),
    tenant: str = Depends(tenant_of),
) -> dict[str, Any]:
    runs = await _state(request).flow_runs.runs.list(tenant, flow=flow, status=status, limit=limit)
    return {"object": "list", "data": [run_resource(run) for run in runs]}


@router.get("/runs/{run_id}", responses=errors(400, 401, 404))
async def get_run(run_id: PathId, request: Request, tenant: str = Depends(tenant_of)) -> Any:
    run = await _state(request).flow_runs.runs.get(run_id, tenant)
    if run is None:
        raise not_found("flow run", run_id)
    return run_resource(run)


@router.post("/runs/{run_id}/approve", status_code=202, responses=errors(400, 401, 404, 409))
async def approve(
    run_id: PathId,
    request: Request,
    body: ApproveRequest | None = None,
    tenant: str = Depends(tenant_of),
) -> JSONResponse:
    target = body.target if body is not None else None
    decide = _state(request).flow_runs.approve(tenant, run_id, target)
    return await decision(decide, "flow run", run_id, run_resource, param="target")


@router.post("/runs/{run_id}/revise", status_code=202, responses=errors(400, 401, 404, 409))
async def revise(
    run_id: PathId, body: ReviseRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    decide = _state(request).flow_runs.revise(tenant, run_id, body.target, body.feedback)
    return await decision(decide, "flow run", run_id, run_resource, param="target")


@router.post("/runs/{run_id}/reply", status_code=202, responses=errors(400, 401, 404, 409))
async def reply(
    run_id: PathId, body: ReplyRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    decide = _state(request).flow_runs.reply(tenant, run_id, body.text, body.target)
    return await decision(decide, "flow run", run_id, run_resource, param="target")


@router.get("/{name}", responses=errors(400, 401, 404))
async def describe_flow(
    name: PathId, request: Request, tenant: str = Depends(tenant_of)
) -> dict[str, Any]:
    return _describe(request, name)


@router.post("/{name}/runs", status_code=202, responses=errors(400, 401, 404))
async def start_run(
    name: PathId, body: StartRequest, request: Request, tenant: str = Depends(tenant_of)
) -> JSONResponse:
    try:
        run = await _state(request).flow_runs.start(tenant, name, body.inputs)
    except UnknownFlow as exc:
        raise APIError(404, str(exc), param="name", code="not_found") from None
    except FlowInputError as exc:
        raise APIError(400, str(exc), param="inputs", code="invalid_input") from None
    except AgentrigError as exc:  # the flow's YAML is wrong: the server's fault
        raise APIError(500, str(exc), type="server_error") from None
    return JSONResponse(run_resource(run), status_code=202)
