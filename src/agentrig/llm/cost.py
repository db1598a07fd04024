"""What a model call costs, in integer micro-dollars.

Prices come from the ``genai-prices`` package (looked up once per model, then cached)
and can be overridden per model in configuration. A price in USD per million tokens is
exactly a price in micro-dollars per token, so the arithmetic stays in integers and
Decimals and never accumulates float error. Tiered prices (for example Gemini above 200k
tokens) are delegated to genai-prices' own calculation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from genai_prices import Usage as PriceUsage
from genai_prices import calc_price

from agentrig.config import ModelConfig
from agentrig.items import FunctionCall, FunctionCallOutput, Message
from agentrig.llm.types import ModelRequest
from agentrig.usage import Usage

log = logging.getLogger(__name__)

ZERO = Decimal(0)

# agentrig provider kinds -> genai-prices provider ids
_PRICE_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google"}


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens (= micro-dollars per token). ``tiered`` holds a genai-prices
    ``ModelPrice`` whose tiers depend on the request size."""

    input: Decimal = ZERO
    output: Decimal = ZERO
    cached_input: Decimal = ZERO
    tiered: Any = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                object.__setattr__(self, name, Decimal(str(value)))

    @property
    def is_free(self) -> bool:
        return self.tiered is None and not (self.input or self.output or self.cached_input)

    def cost_micros(self, usage: Usage) -> int:
        """The cost of ``usage`` in micro-dollars, rounded half up."""
        if self.tiered is not None:
            return _tiered_cost(self.tiered, usage)
        cached = min(usage.cached_tokens, usage.input_tokens)
        total = (
            (usage.input_tokens - cached) * self.input
            + cached * self.cached_input
            + usage.output_tokens * self.output
        )
        return int(total.to_integral_value(rounding=ROUND_HALF_UP))

    def estimate_micros(self, input_tokens: int, output_tokens: int) -> int:
        """An upper estimate for a call of this size (for budget reservations)."""
        return self.cost_micros(Usage(input_tokens=input_tokens, output_tokens=output_tokens))


FREE = Price()


def _tiered_cost(model_price: Any, usage: Usage) -> int:
    cached = min(usage.cached_tokens, usage.input_tokens)
    result = model_price.calc_price(
        PriceUsage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=cached,
            output_tokens=usage.output_tokens,
        )
    )
    micros = result["total_price"] * 1_000_000
    return int(micros.to_integral_value(rounding=ROUND_HALF_UP))


def find_price(kind: str, model: str, config: ModelConfig | None = None) -> Price:
    """The price of ``model`` served by a provider of ``kind``, overrides applied."""
    config = config or ModelConfig()
    overrides = (config.input_price, config.output_price, config.cached_input_price)
    if kind == "local" or (config.input_price is not None and config.output_price is not None):
        return _flat(*overrides)
    listed = _listed_price(kind, config.name or model)
    if listed is None:
        if any(value is not None for value in overrides):
            return _flat(*overrides)
        log.warning(
            "no price known for %s model %r: its calls are counted as free; "
            "set input_price and output_price in its [llm.providers.*.models] entry",
            kind,
            model,
        )
        return FREE
    flat = [listed.input_mtok, listed.output_mtok, listed.cache_read_mtok]
    if not all(value is None or isinstance(value, Decimal) for value in flat):
        return Price(tiered=listed)
    return _flat(
        config.input_price if config.input_price is not None else flat[0],
        config.output_price if config.output_price is not None else flat[1],
        config.cached_input_price if config.cached_input_price is not None else flat[2],
    )


def _flat(input: Decimal | None, output: Decimal | None, cached: Decimal | None) -> Price:
    input = input or ZERO
    return Price(
        input=input, output=output or ZERO, cached_input=input if cached is None else cached
    )


def _listed_price(kind: str, model: str) -> Any:
    provider = _PRICE_PROVIDERS.get(kind)
    if provider is None:
        return None
    from genai_prices import Usage as PriceUsage

    try:
        return calc_price(
            PriceUsage(input_tokens=0), model_ref=model, provider_id=provider
        ).model_price
    except LookupError:
        return None


def estimate_input_tokens(request: ModelRequest) -> int:
    """An upper estimate of a request's input tokens: a token is at least one character."""
    size = len(request.instructions or "")
    for item in request.items:
        if isinstance(item, Message):
            size += len(item.text) + 8
        elif isinstance(item, FunctionCall):
            size += len(item.name) + len(item.arguments) + 8
        elif isinstance(item, FunctionCallOutput):
            size += len(item.output) + 8
    for tool in request.tools:
        size += len(tool.name) + len(tool.description) + len(str(tool.parameters))
    return size
