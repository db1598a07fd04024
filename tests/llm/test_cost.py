import logging
from decimal import Decimal

from agentrig.config import ModelConfig
from agentrig.items import FunctionCall, as_items
from agentrig.llm.cost import Price, estimate_input_tokens, find_price
from agentrig.llm.types import ModelRequest, ToolSpec
from agentrig.usage import Usage


def test_prices_come_from_genai_prices():
    price = find_price("openai", "gpt-4o-mini")
    assert (price.input, price.output, price.cached_input) == (
        Decimal("0.15"),
        Decimal("0.6"),
        Decimal("0.075"),
    )
    assert price.cost_micros(Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == 750_000


def test_configuration_overrides_part_of_a_listed_price():
    price = find_price("openai", "gpt-4o-mini", ModelConfig(output_price=Decimal(1)))
    assert (price.input, price.output) == (Decimal("0.15"), Decimal(1))


def test_alias_is_priced_by_its_vendor_name():
    price = find_price("anthropic", "smart", ModelConfig(name="claude-3-5-haiku-latest"))
    assert price.input > 0 and price.output > price.input


def test_local_models_are_free():
    assert find_price("local", "smollm2").is_free


def test_unknown_model_is_free_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        price = find_price("openai", "my-finetune-xyz")
    assert price.is_free
    assert "my-finetune-xyz" in caplog.text and "input_price" in caplog.text


def test_cost_arithmetic_is_exact_in_micro_dollars():
    price = Price(Decimal("2.5"), Decimal("10"), Decimal("1.25"))
    usage = Usage(input_tokens=1234, cached_tokens=1000, output_tokens=77)
    # 234 * 2.5 + 1000 * 1.25 + 77 * 10 = 585 + 1250 + 770
    assert price.cost_micros(usage) == 2605
    assert Price(Decimal("0.15"), Decimal(0)).cost_micros(Usage(input_tokens=3)) == 0  # 0.45 -> 0
    assert Price(Decimal("0.15"), Decimal(0)).cost_micros(Usage(input_tokens=10)) == 2  # 1.5 -> 2
    assert Price(1, 2).cost_micros(Usage(input_tokens=1, output_tokens=1)) == 3


def test_tiered_prices_use_the_request_size():
    price = find_price("gemini", "gemini-2.5-pro")
    small = price.cost_micros(Usage(input_tokens=100_000))
    large = price.cost_micros(Usage(input_tokens=300_000))
    assert price.tiered is not None
    assert large > 3 * small  # above 200k tokens the input price is higher


def test_input_estimate_is_at_least_the_characters_sent():
    request = ModelRequest(
        items=[*as_items("hello world"), FunctionCall(call_id="c", name="f", arguments='{"a":1}')],
        instructions="sys",
        tools=[ToolSpec(name="f", description="does f")],
    )
    assert estimate_input_tokens(request) >= len("hello world") + len('{"a":1}') + len("sys")
