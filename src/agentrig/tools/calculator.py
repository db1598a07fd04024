"""``calculator``: safe arithmetic for agents, the seed example of a built-in tool.

Written by hand because ``eval`` is not safe: the expression is parsed with :mod:`ast`
and only numbers, + - * / // % **, unary signs, parentheses and a few math functions are
evaluated; anything else is refused with a message the model can act on. Exponents and
results are bounded so that ``9**9**9`` cannot hang the process.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from agentrig.tools.base import ToolInputError
from agentrig.tools.function_tool import FunctionTool

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "log": math.log,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 10**100


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression, or :class:`ToolInputError` saying why not."""
    if len(expression) > 1000:
        raise ToolInputError("expression too long (at most 1000 characters)")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ToolInputError(f"not an arithmetic expression: {expression!r}") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolInputError("division by zero") from None
    except (OverflowError, ValueError) as exc:
        raise ToolInputError(f"cannot compute {expression!r}: {exc}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is larger than {MAX_EXPONENT}")
        result = _BINARY[type(node.op)](left, right)
        if abs(result) > MAX_MAGNITUDE:
            raise ValueError("result is too large")
        return result
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_eval(arg) for arg in node.args))
    raise ValueError(
        f"{ast.unparse(node)!r} is not allowed (numbers, + - * / // % ** and "
        f"{', '.join(sorted(_FUNCTIONS))} only)"
    )


def _calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly as written.

    Args:
        expression: e.g. "(2 + 3) * 4 / sqrt(16)"; supports + - * / // % ** and
            sqrt, abs, round, min, max, log, exp, sin, cos, tan, pi, e.
    """
    return str(evaluate(expression))


calculator = FunctionTool(_calculator, name="calculator")
