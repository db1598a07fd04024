"""API keys: ``Authorization: Bearer <key>`` names the tenant every stored object belongs to.

While no key exists, authentication is off and every request is the ``default`` tenant;
the CLI then only binds to 127.0.0.1 unless ``--insecure`` (see ``agentrig serve``).
Keys are made with ``agentrig keys create --name NAME`` and take effect at the next start.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agentrig.server.errors import APIError

DEFAULT_TENANT = "default"
# documents the scheme in /openapi.json; never answers itself (auto_error=False)
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An agentrig API key (`agentrig keys create`), needed once any key exists.",
)


async def tenant_of(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> str:
    """The calling tenant (a FastAPI dependency)."""
    state = request.app.state.server
    if not state.auth_enabled:
        return DEFAULT_TENANT
    if credentials is None:  # no header, another scheme, or no key after "Bearer"
        raise APIError(
            401,
            "You didn't provide an API key: send 'Authorization: Bearer <key>'.",
            type="invalid_request_error",
            code="missing_api_key",
        )
    record = await state.keys.verify(credentials.credentials)
    if record is None:
        raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")
    return record.tenant
