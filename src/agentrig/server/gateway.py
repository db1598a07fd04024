"""Gateway mode (``agentrig serve --upstream URL``): in front of an inference server.

``/v1/responses`` is served by agentrig (stored responses, conversations, the tool loop
of agents), with inference sent to the upstream server as an OpenAI-compatible provider.
Every other ``/v1/*`` request is proxied to the upstream unchanged, streaming included,
so the server's own endpoints (chat completions, embeddings, models…) keep working.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from agentrig.server.errors import APIError

router = APIRouter()

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


@router.api_route(
    "/v1/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def proxy(path: str, request: Request) -> StreamingResponse:
    upstream = request.app.state.server.upstream
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    outgoing = upstream.build_request(
        request.method,
        f"/{path}",
        params=request.query_params,
        headers=headers,
        content=await request.body(),
    )
    try:
        response = await upstream.send(outgoing, stream=True)
    except Exception as exc:
        raise APIError(
            502,
            f"upstream unreachable: {type(exc).__name__}",
            type="server_error",
            code="upstream_error",
        ) from None
    passed = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
    passed.pop("content-encoding", None)
    return StreamingResponse(
        response.aiter_bytes(),
        status_code=response.status_code,
        headers=passed,
        background=BackgroundTask(response.aclose),
    )
