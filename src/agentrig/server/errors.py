"""Errors in the OpenAI envelope: ``{"error": {"message", "type", "param", "code"}}``.

Every failure leaves the server in this shape with the right status, so OpenAI clients
raise their usual exceptions. Bad input is a 4xx naming the field; an unexpected failure
is a 500 whose details stay in the log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentrig.errors import (
    AuthenticationFailed,
    BadRequest,
    BudgetExceeded,
    ConfigError,
    ContextTooLong,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error answered to the client as an OpenAI error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            },
            status_code=self.status,
        )


def not_found(what: str, id: str, param: str | None = None) -> APIError:
    return APIError(404, f"No {what} found with id '{id}'.", param=param, code="not_found")


def from_exception(exc: Exception) -> APIError:
    """The client-facing form of an agentrig error."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, ContextTooLong):
        return APIError(400, str(exc), param="input", code="context_length_exceeded")
    if isinstance(exc, BadRequest):
        return APIError(400, str(exc))
    if isinstance(exc, RateLimited):
        return APIError(429, str(exc), type="rate_limit_error", code="rate_limit_exceeded")
    if isinstance(exc, BudgetExceeded):
        return APIError(429, str(exc), type="insufficient_quota", code="budget_exceeded")
    if isinstance(exc, Timeout):
        return APIError(504, str(exc), type="server_error", code="upstream_timeout")
    if isinstance(exc, AuthenticationFailed | ProviderUnavailable | LLMError):
        return APIError(502, str(exc), type="server_error", code="upstream_error")
    if isinstance(exc, ConfigError):
        return APIError(400, str(exc), param="model", code="model_not_found")
    log.exception("unexpected error", exc_info=exc)
    return APIError(
        500, "The server had an error while processing your request.", type="server_error"
    )


def _path(location: Any) -> str:
    """A pydantic error location as OpenAI names a field: ``input[0].content``.

    pydantic's names of union branches (``list[...]``, ``function-after[...]``) are left out.
    """
    path = ""
    for part in location:
        if part == "body" and not path:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif "[" not in str(part) and "(" not in str(part):
            path += f".{part}" if path else str(part)
    return path


# agentrig's own request checks say "<field path>: <what is wrong>" (see server/wire.py).
_OWN_CHECK = re.compile(r"^(?:Value error, )?(?P<path>[A-Za-z_][\w.\[\]]*): ")


def _validation_param(errors: list[dict[str, Any]]) -> str | None:
    path = _path(errors[0].get("loc", ()))
    found = _OWN_CHECK.match(str(errors[0].get("msg", "")))
    if found is not None and errors[0].get("type") == "value_error":
        return (
            f"{path}.{found['path']}"
            if path and not found["path"].startswith(path)
            else (found["path"])
        )
    return path or None


def _message(error: dict[str, Any]) -> str:
    text = str(error.get("msg", "")).removeprefix("Value error, ")
    path = _path(error.get("loc", ()))
    return text if not path or text.startswith(path) else f"{path}: {text}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        param = _validation_param(errors) if errors else None
        detail = "; ".join(_message(e) for e in errors[:5])
        return APIError(400, f"Invalid request: {detail}", param=param).response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None
        return APIError(exc.status_code, str(exc.detail), code=code).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return from_exception(exc).response()
