"""agentrig's exceptions: one small hierarchy that every layer raises and catches.

Provider SDKs each raise their own exception zoo; the LLM boundary maps them onto the
six ``LLMError`` kinds below so that the router, the agent loop and the server decide
what to do (retry, fall back, report) without knowing which vendor failed.
"""

from __future__ import annotations


class AgentrigError(Exception):
    """Base class of every error agentrig raises on purpose."""


class ConfigError(AgentrigError):
    """The configuration is invalid; the message names the key, the value and what is expected."""


class LLMError(AgentrigError):
    """A model call failed. Says which provider and model failed, and why."""

    retryable: bool = False

    def __init__(self, message: str, *, provider: str = "?", model: str = "?") -> None:
        self.provider = provider
        self.model = model
        self.reason = message
        super().__init__(f"{provider}/{model}: {message}")


class RateLimited(LLMError):
    """The provider refused the call for now (HTTP 429 or its equivalent)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "?",
        model: str = "?",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model)
        self.retry_after = retry_after


class Timeout(LLMError):
    """The call did not finish within its time limit."""

    retryable = True


class ProviderUnavailable(LLMError):
    """The provider could not be reached, failed (5xx) or answered something unreadable."""

    retryable = True


class AuthenticationFailed(LLMError):
    """The provider refused the credentials (HTTP 401/403)."""


class BadRequest(LLMError):
    """The provider rejected the request itself; sending it again will not help."""


class ContextTooLong(BadRequest):
    """The request does not fit the model's context window."""


class BudgetExceeded(AgentrigError):
    """A role's budget is spent and its fallback chain has no zero-cost model."""

    def __init__(self, role: str, period: str, spent_micros: int, limit_micros: int) -> None:
        self.role = role
        self.period = period
        self.spent_micros = spent_micros
        self.limit_micros = limit_micros
        super().__init__(
            f"budget of role {role!r} exhausted: {period} spend ${spent_micros / 1e6:.6f} "
            f"of ${limit_micros / 1e6:.6f}, and no zero-cost model is in its chain"
        )


class AgentRunError(AgentrigError):
    """A run stopped early. Carries what the run produced so far (its items, usage and
    state), which the run's session also keeps."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.new_items: list = []
        self.usage = None
        self.state = None


class MaxTurnsExceeded(AgentRunError):
    """The run made ``max_turns`` model calls without a final answer."""


class GuardrailTripped(AgentRunError):
    """A guardrail tripped; ``output`` is what the guardrail returned."""

    def __init__(self, guardrail: str, output: object, *, stage: str) -> None:
        super().__init__(f"{stage} guardrail {guardrail!r} tripped: {output!r}")
        self.guardrail = guardrail
        self.output = output
        self.stage = stage


class ToolFailed(AgentRunError):
    """A tool configured to fail the run raised."""


class OutputInvalid(AgentRunError):
    """The model's final answer did not match the agent's ``output_type`` after retries."""
