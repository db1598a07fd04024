"""API keys: ``Authorization: Bearer <key>`` names the tenant every stored object belongs to.

While no key exists, authentication is off and every request is the ``default`` tenant;
the CLI then only binds to 127.0.0.1 unless ``--insecure`` (see ``agentrig serve``).
Keys are made with ``agentrig keys create --name NAME`` and take effect at the next start.
"""

from __future__ import annotations

from fastapi import Request

from agentrig.server.errors import APIError

DEFAULT_TENANT = "default"


async def tenant_of(request: Request) -> str:
    """The calling tenant (a FastAPI dependency)."""
    state = request.app.state.server
    if not state.auth_enabled:
        return DEFAULT_TENANT
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise APIError(
            401,
            "You didn't provide an API key: send 'Authorization: Bearer <key>'.",
            type="invalid_request_error",
            code="missing_api_key",
        )
    record = await state.keys.verify(key.strip())
    if record is None:
        raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")
    return record.tenant
