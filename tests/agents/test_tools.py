import json

import pytest
from pydantic import BaseModel

from agentrig import ToolContext, calculator, tool
from agentrig.tools import ToolInputError
from agentrig.tools.calculator import evaluate


@tool
def search(query: str, limit: int = 5, exact: bool = False) -> list[str]:
    """Search the catalogue.

    Args:
        query: words to look for
        limit: most results
    """
    return [query] * limit


@tool(name="remember", needs_approval=True, timeout=2.5, max_retries=2)
async def remember_fact(ctx: ToolContext, fact: str) -> str:
    """Store a fact for later."""
    ctx.state.setdefault("facts", []).append(fact)
    return f"stored {fact} for {ctx.context['user']} (call {ctx.call_id})"


class Point(BaseModel):
    x: int
    y: int


@tool
def origin() -> Point:
    return Point(x=0, y=0)


def test_schema_comes_from_signature_and_docstring():
    assert search.name == "search"
    assert search.description == "Search the catalogue."
    assert search.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "words to look for"},
            "limit": {"type": "integer", "default": 5, "description": "most results"},
            "exact": {"type": "boolean", "default": False},
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def test_options_and_context_parameter_is_not_in_the_schema():
    assert remember_fact.name == "remember"
    assert (remember_fact.needs_approval, remember_fact.timeout, remember_fact.max_retries) == (
        True,
        2.5,
        2,
    )
    assert list(remember_fact.parameters["properties"]) == ["fact"]
    assert remember_fact.takes_context


async def test_invoke_validates_and_converts_arguments():
    output = await search.invoke(ToolContext({}), '{"query": "tea", "limit": "2"}')
    assert json.loads(output) == ["tea", "tea"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"limit": 2}', "query: Field required"),
        ('{"query": "x", "limit": "many"}', "limit: Input should be a valid integer"),
        ('{"query": "x", "colour": "red"}', "colour: Extra inputs are not permitted"),
        ("{not json", "not valid JSON"),
    ],
)
async def test_bad_arguments_are_explained(arguments, message):
    with pytest.raises(ToolInputError, match=message):
        await search.invoke(ToolContext({}), arguments)


async def test_async_tool_gets_its_context_and_state():
    ctx = ToolContext({"user": "ada"}, call_id="call_7")
    assert await remember_fact.invoke(ctx, '{"fact": "tea"}') == "stored tea for ada (call call_7)"
    assert ctx.state == {"facts": ["tea"]}


async def test_outputs_become_text():
    assert await origin.invoke(ToolContext({}), "") == '{"x":0,"y":0}'


async def test_blocking_tool_can_run_in_a_thread():
    loop_thread = []

    @tool(thread=True)
    def blocking() -> str:
        import threading

        loop_thread.append(threading.current_thread().name)
        return "ok"

    assert await blocking.invoke(ToolContext({}), "{}") == "ok"
    assert loop_thread[0] != "MainThread"


def test_varargs_are_refused():
    with pytest.raises(TypeError, match="not supported"):

        @tool
        def bad(*numbers: int) -> int:
            return sum(numbers)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4 / sqrt(16)", 5),
        ("2 ** 10", 1024),
        ("2^3", 8),
        ("-7 // 2", -4),
        ("round(pi, 2)", 3.14),
        ("max(1, 5, 3) % 4", 1),
        ("0.1 + 0.2", 0.30000000000000004),
    ],
)
def test_calculator_evaluates(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('ls')", "not allowed"),
        ("open('x')", "not allowed"),
        ("(1).__class__", "not allowed"),
        ("9 ** 9 ** 9", "exponent"),
        ("1 / 0", "division by zero"),
        ("2 +", "not an arithmetic expression"),
        ("x * 2", "not allowed"),
    ],
)
def test_calculator_refuses(expression, message):
    with pytest.raises(ToolInputError, match=message):
        evaluate(expression)


async def test_calculator_is_a_tool():
    assert calculator.name == "calculator"
    assert await calculator.invoke(ToolContext({}), '{"expression": "6 * 7"}') == "42"
