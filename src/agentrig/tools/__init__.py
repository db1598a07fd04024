"""Tools agents can call: ``@tool`` functions, the built-in ``calculator``, and MCP servers'
tools (``agentrig.tools.mcp``). Every tool follows the :class:`Tool` protocol."""

from agentrig.tools.base import Tool, ToolContext, ToolError, ToolInputError, tool_spec
from agentrig.tools.calculator import calculator
from agentrig.tools.function_tool import FunctionTool, tool

__all__ = [
    "FunctionTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolInputError",
    "calculator",
    "tool",
    "tool_spec",
]
