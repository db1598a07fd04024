"""Liveness, readiness, Prometheus metrics, and the model list.

``/health`` answers while the process runs; ``/ready`` checks what a request needs (the
database answers, the router has a usable default chain, the job queue: in process, or
Redis answers); ``/metrics`` exposes request counts and latency per route, tokens and cost, summed
over the worker processes of ``agentrig serve --workers N``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from agentrig.server.auth import tenant_of
from agentrig.server.openapi import Health, ModelList, Readiness, errors, ok

# prometheus_client's multiprocess mode: set (to an empty directory) before the workers start.
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
router = APIRouter()
models_router = APIRouter()


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agentrig_http_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "agentrig_http_request_seconds",
            "HTTP request latency",
            ["route", "method"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "agentrig_tokens_total", "Model tokens", ["model", "kind"], registry=self.registry
        )
        self.cost = Counter(
            "agentrig_cost_usd_total", "Model cost in USD", ["model"], registry=self.registry
        )

    def record_usage(self, model: str, input_tokens: int, output_tokens: int, micros: int) -> None:
        self.tokens.labels(model, "input").inc(input_tokens)
        self.tokens.labels(model, "output").inc(output_tokens)
        self.cost.labels(model).inc(micros / 1e6)


class _MeasureRequests:
    """Pure ASGI middleware (not BaseHTTPMiddleware, which costs a task per request and
    buffers streams): counts each request and times it until its response is complete."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI) -> Metrics:
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(_MeasureRequests, metrics=metrics)
    return metrics


@router.get("/health", response_model=None, responses=ok(Health, "The server is running."))
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=None,
    responses=ok(Readiness, "Ready to serve.")
    | {503: {"model": Readiness, "description": "Not ready: checks says why."}},
)
async def ready(request: Request) -> JSONResponse:
    state = request.app.state.server
    checks: dict[str, str] = {}
    try:
        async with state.database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # the point is to report it
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        state.router.chain("default")
        checks["router"] = "ok"
    except Exception as exc:
        checks["router"] = f"error: {exc}"
    kind = state.jobs.kind
    try:
        answers = await state.jobs.ping()
        checks["queue"] = f"ok ({kind})" if answers else f"error: {kind} does not answer"
    except Exception as exc:
        checks["queue"] = f"error: {kind}: {type(exc).__name__}"
    healthy = all(value.startswith("ok") for value in checks.values())
    return JSONResponse(
        {"status": "ready" if healthy else "not ready", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    response_description="Prometheus text exposition format.",
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    if os.environ.get(MULTIPROCESS_DIRECTORY):
        # Several worker processes: their metrics are in files there, summed here.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@models_router.get(
    "/v1/models",
    response_model=None,
    responses=ok(ModelList, "Roles, provider models, agent:, crew: and flow:<name>.") | errors(401),
)
async def list_models(request: Request, tenant: str = Depends(tenant_of)) -> dict:
    state = request.app.state.server
    created = 0
    names = list(state.router.settings.roles)
    for provider, config in state.router.settings.providers.items():
        names.extend(f"{provider}/{model}" for model in config.models)
    names.extend(f"agent:{name}" for name in state.agents)
    names.extend(f"crew:{name}" for name in state.crews.names())
    names.extend(f"flow:{name}" for name in state.flows.names())
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "agentrig"}
            for name in names
        ],
    }
