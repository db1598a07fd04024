"""Token usage and the usage record: shared by the LLM boundary, which produces them,
the store, which keeps them, and the agent runtime and server, which report them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel


class Usage(BaseModel):
    """Tokens used by one or more model calls. ``cached_tokens`` is part of ``input_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            requests=self.requests + other.requests,
        )


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One attempt of one model call as kept in the usage table. Cost is in micro-dollars."""

    at: datetime
    role: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micros: int
    latency_ms: float
    outcome: str  # "ok", "cancelled", or the error class name
    kind: str = "chat"  # "chat" or "embed"
