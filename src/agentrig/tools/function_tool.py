"""``@tool``: a Python function as a tool the model can call.

The JSON schema comes from the signature (pydantic builds and validates it from the type
hints), and the descriptions from the docstring (``docstring-parser`` reads Google,
NumPy, reST and Epydoc styles). Arguments are validated before the function runs, so a
malformed call reaches the model as a readable error instead of a stack trace. An
optional first parameter typed :class:`ToolContext` (or named ``ctx``) receives the call's
context and is not part of the schema.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any, get_type_hints, overload

import docstring_parser
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agentrig.tools.base import ToolContext, ToolInputError


class FunctionTool:
    """A tool backed by a sync or async Python function."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        needs_approval: bool = False,
        timeout: float | None = None,
        max_retries: int = 0,
        fail_run: bool = False,
        thread: bool = False,
    ) -> None:
        self.function = function
        self.name = name or function.__name__
        doc = docstring_parser.parse(inspect.getdoc(function) or "")
        summary = [doc.short_description or "", doc.long_description or ""]
        self.description = description or "\n\n".join(part for part in summary if part)
        self.needs_approval = needs_approval
        self.timeout = timeout
        self.max_retries = max_retries
        self.fail_run = fail_run
        self.thread = thread
        self.is_async = inspect.iscoroutinefunction(function)
        self.takes_context, self.arguments_model = _arguments_model(function, doc)
        self.parameters = _clean_schema(self.arguments_model.model_json_schema())
        self._fields = tuple(self.arguments_model.model_fields)

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (handy in tests)."""
        return self.function(*args, **kwargs)

    async def invoke(self, ctx: ToolContext, arguments: str) -> str:
        try:
            data = json.loads(arguments) if arguments.strip() else {}
            validated = self.arguments_model.model_validate(data)
        except json.JSONDecodeError as exc:
            raise ToolInputError(f"arguments of {self.name} are not valid JSON: {exc}") from None
        except ValidationError as exc:
            raise ToolInputError(f"invalid arguments for {self.name}: {_errors(exc)}") from None
        kwargs = {name: getattr(validated, name) for name in self._fields}
        args = (ctx,) if self.takes_context else ()
        if self.is_async:
            result = await self.function(*args, **kwargs)
        elif self.thread:
            result = await asyncio.to_thread(self.function, *args, **kwargs)
        else:
            result = self.function(*args, **kwargs)
        return to_output_text(result)


def to_output_text(result: Any) -> str:
    """What the model is told a tool returned."""
    if isinstance(result, str):
        return result
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    return json.dumps(result, default=str)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors()
    )


def _arguments_model(
    function: Callable[..., Any], doc: docstring_parser.Docstring
) -> tuple[bool, type[BaseModel]]:
    signature = inspect.signature(function)
    hints = get_type_hints(function)
    described = {param.arg_name: param.description for param in doc.params}
    parameters = list(signature.parameters.values())
    takes_context = bool(parameters) and (
        hints.get(parameters[0].name) is ToolContext
        or (parameters[0].name == "ctx" and parameters[0].name not in hints)
    )
    fields: dict[str, Any] = {}
    for parameter in parameters[1 if takes_context else 0 :]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"tool {function.__name__}: *args and **kwargs are not supported")
        annotation = hints.get(parameter.name, Any)
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (
            annotation,
            Field(default, description=described.get(parameter.name)),
        )
    model = create_model(  # type: ignore[call-overload]
        f"{function.__name__}_arguments",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )
    return takes_context, model


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated titles: they repeat the names and cost tokens."""
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    return schema


@overload
def tool(function: Callable[..., Any], /) -> FunctionTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    needs_approval: bool = False,
    timeout: float | None = None,
    max_retries: int = 0,
    fail_run: bool = False,
    thread: bool = False,
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(function: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a tool: ``@tool`` or ``@tool(name=…, needs_approval=…, timeout=…)``.

    ``needs_approval`` pauses the run until the call is approved; ``timeout`` (seconds)
    cancels a call that takes longer; ``max_retries`` calls again after an exception
    before the error is reported to the model; ``fail_run`` fails the run instead of
    reporting; ``thread`` runs a blocking sync function in a worker thread (sync tools
    otherwise run on the event loop, which is cheapest for quick functions).
    """
    if function is not None:
        return FunctionTool(function)
    return lambda function: FunctionTool(function, **options)
