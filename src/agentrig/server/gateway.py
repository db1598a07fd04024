"""Gateway mode (``agentrig serve --upstream URL``): in front of an inference server.

``/v1/responses`` and ``/v1/conversations`` are served by agentrig (stored responses,
conversations, the tool loop of agents), with inference sent to the upstream server as an
OpenAI-compatible provider. Every other ``/v1/*`` request (chat completions, embeddings,
models, ...) is proxied to the upstream unchanged: method, raw path, query string, headers
and body go as they came, and the upstream's status, headers and body come back as they
are, streamed chunk by chunk. When API keys are on, the key is checked here and not
forwarded: it is agentrig's credential, not the upstream's.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.routing import Match

from agentrig.server.auth import tenant_of
from agentrig.server.errors import APIError

router = APIRouter()

# Not forwarded in either direction (RFC 9110 7.6.1), plus what the transports set themselves.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# The gateway's server sends its own.
_OWN_RESPONSE_HEADERS = frozenset({"date", "server"})
# The API paths agentrig serves itself in gateway mode: never proxied.
SERVED_HERE = ("responses", "conversations")


def _dropped(headers: list[tuple[bytes, bytes]], always: frozenset[str]) -> set[str]:
    """The names not to forward: ``always``, and those the ``Connection`` header lists."""
    dropped = set(always)
    for name, value in headers:
        if name.lower() == b"connection":
            dropped.update(token.strip().lower() for token in value.decode("latin-1").split(","))
    return dropped


def _not_served(request: Request) -> APIError:
    """The error for a request to one of agentrig's own paths that no route of it takes."""
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is Match.PARTIAL:
            return APIError(405, "Method Not Allowed")
    return APIError(404, "Not Found", code="not_found")


@router.api_route(
    "/v1/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def proxy(path: str, request: Request, tenant: str = Depends(tenant_of)) -> StreamingResponse:
    if path.split("/", 1)[0] in SERVED_HERE:
        raise _not_served(request)
    state = request.app.state.server
    upstream: httpx.AsyncClient = state.upstream
    raw = request.scope["headers"]
    skip = _dropped(raw, _HOP_BY_HOP)
    if state.auth_enabled:
        skip.add("authorization")
    headers = [(k, v) for k, v in raw if k.decode("latin-1").lower() not in skip]
    # The raw path (percent-escapes kept) after /v1, and the query string as it came.
    target = (request.scope.get("raw_path") or request.scope["path"].encode())[len(b"/v1/") :]
    query = request.scope.get("query_string") or b""
    base = upstream.base_url
    url = base.copy_with(raw_path=base.raw_path + target + (b"?" + query if query else b""))
    body = await request.body()
    outgoing = httpx.Request(request.method, url, headers=headers, content=body or None)
    try:
        response = await upstream.send(outgoing, stream=True)
    except Exception as exc:
        raise APIError(
            502,
            f"upstream unreachable: {type(exc).__name__}",
            type="server_error",
            code="upstream_error",
        ) from None
    skip = _dropped(response.headers.raw, _HOP_BY_HOP | _OWN_RESPONSE_HEADERS)
    passed = [(k, v) for k, v in response.headers.raw if k.decode("latin-1").lower() not in skip]
    length = response.headers.get("content-length")
    if length is not None and "transfer-encoding" not in response.headers:
        passed.append((b"content-length", length.encode("latin-1")))
    # The bytes as sent (still compressed, if they were): content-encoding passes through.
    proxied = StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        background=BackgroundTask(response.aclose),
    )
    proxied.raw_headers = [(k.lower(), v) for k, v in passed]
    return proxied
