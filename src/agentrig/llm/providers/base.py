"""Pieces every provider adapter shares: HTTP status to error mapping, JSON arguments,
and assembling a :class:`ModelResponse` from a finished stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from agentrig.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextTooLong,
    LLMError,
    ProviderUnavailable,
    RateLimited,
)
from agentrig.llm.types import Completed, ModelResponse, ModelStreamEvent

_CONTEXT_MARKERS = (
    "context_length",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum",
)


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    model: str,
    retry_after: float | None = None,
) -> LLMError:
    """Map an HTTP status (and the vendor's message) to agentrig's error kinds."""
    reason = f"HTTP {status}: {message}"
    if status == 429:
        return RateLimited(reason, provider=provider, model=model, retry_after=retry_after)
    if status in (401, 403):
        return AuthenticationFailed(reason, provider=provider, model=model)
    if status in (400, 404, 409, 413, 422):
        if status == 413 or any(marker in message.lower() for marker in _CONTEXT_MARKERS):
            return ContextTooLong(reason, provider=provider, model=model)
        return BadRequest(reason, provider=provider, model=model)
    return ProviderUnavailable(reason, provider=provider, model=model)


def retry_after_seconds(headers: Any) -> float | None:
    """The ``retry-after`` header in seconds, if the response has a numeric one."""
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_arguments(arguments: str) -> dict[str, Any]:
    """Decode a tool call's JSON arguments; an empty string means no arguments."""
    if not arguments.strip():
        return {}
    value = json.loads(arguments)
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments must be a JSON object, got {arguments!r}")
    return value


async def response_from_stream(events: AsyncIterator[ModelStreamEvent]) -> ModelResponse:
    """Drain a stream and return the response carried by its ``Completed`` event."""
    response: ModelResponse | None = None
    async for event in events:
        if isinstance(event, Completed):
            response = event.response
    if response is None:
        raise ProviderUnavailable("stream ended without a completed event")
    return response
