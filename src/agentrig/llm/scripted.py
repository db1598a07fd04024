"""A deterministic model for tests: it plays back a script of turns.

Each turn is ``text("…")``, ``tool_call("name", **arguments)``, a list of those (several
outputs in one response), or an exception instance to raise. The model streams each turn
as real deltas (text word by word, tool arguments in pieces), counts tokens as words, and
records every request it received in ``requests`` so a test can assert what was sent.
Public as ``agentrig.testing.ScriptedModel``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agentrig.errors import AgentrigError
from agentrig.items import FunctionCall, Item, Message, OutputText, new_id
from agentrig.llm.types import (
    Completed,
    ItemDone,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)


@dataclass(frozen=True)
class ScriptedText:
    text: str


@dataclass(frozen=True)
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any]
    call_id: str | None = None


ScriptedOutput = ScriptedText | ScriptedToolCall
Turn = ScriptedOutput | Sequence[ScriptedOutput] | BaseException


def text(value: str) -> ScriptedText:
    """A turn (or part of one) in which the model answers ``value``."""
    return ScriptedText(value)


def tool_call(name: str, /, *, call_id: str | None = None, **arguments: Any) -> ScriptedToolCall:
    """A turn (or part of one) in which the model calls the tool ``name``."""
    return ScriptedToolCall(name, arguments, call_id)


class ScriptExhausted(AgentrigError):
    """The scripted model was called more times than it has turns."""


class ScriptedModel:
    """An :class:`~agentrig.llm.types.LLMClient` that answers from a fixed script."""

    def __init__(self, turns: Iterable[Turn] = (), *, name: str = "scripted") -> None:
        self.turns: deque[Turn] = deque(turns)
        self.name = name
        self.model = name
        self.provider = "scripted"
        # Each request with the number of items it had: a caller such as the agent loop
        # may pass its live conversation list, which only grows after the call returns.
        self._received: list[tuple[ModelRequest, int]] = []
        # Words counted in the last request's items, to count only what a longer
        # conversation adds: a scripted turn must not get dearer as the conversation grows.
        self._counted_items: list[Item] = []
        self._counted_words = 0

    @property
    def requests(self) -> list[ModelRequest]:
        """Every request received, each with the items it had when it was received."""
        return [
            request if len(request.items) == count else _with_items(request, count)
            for request, count in self._received
        ]

    def add_turns(self, *turns: Turn) -> None:
        self.turns.extend(turns)

    @property
    def remaining(self) -> int:
        return len(self.turns)

    def _take(self, request: ModelRequest) -> list[ScriptedOutput]:
        self._received.append((request, len(request.items)))
        if not self.turns:
            raise ScriptExhausted(
                f"scripted model {self.name!r} has no turn left for request #{len(self._received)}"
            )
        turn = self.turns.popleft()
        if isinstance(turn, BaseException):
            raise turn
        if isinstance(turn, ScriptedText | ScriptedToolCall):
            return [turn]
        return list(turn)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return self._response(request, _items(self._take(request)))

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        items = _items(self._take(request))
        for item in items:
            if isinstance(item, Message):
                for piece in _word_pieces(item.text):
                    yield TextDelta(item_id=item.id or "", delta=piece)
            elif isinstance(item, FunctionCall):
                half = len(item.arguments) // 2
                for piece in (item.arguments[:half], item.arguments[half:]):
                    yield ToolCallDelta(
                        item_id=item.id or "", call_id=item.call_id, name=item.name, delta=piece
                    )
            yield ItemDone(item=item)
        yield Completed(response=self._response(request, items))

    def _input_words(self, request: ModelRequest) -> int:
        items, seen = request.items, self._counted_items
        start = len(seen)
        if start == 0 or len(items) < start or items[start - 1] is not seen[-1]:
            start, self._counted_words = 0, 0
        self._counted_words += sum(len(_item_text(item).split()) for item in items[start:])
        self._counted_items = items
        return self._counted_words + len((request.instructions or "").split())

    def _response(self, request: ModelRequest, items: list[Item]) -> ModelResponse:
        calls = any(isinstance(item, FunctionCall) for item in items)
        return ModelResponse(
            output=items,
            usage=Usage(
                input_tokens=self._input_words(request),
                output_tokens=sum(len(_item_text(item).split()) for item in items),
                requests=1,
            ),
            model=self.name,
            finish_reason="tool_calls" if calls else "stop",
        )


def _with_items(request: ModelRequest, count: int) -> ModelRequest:
    return request.model_copy(update={"items": list(request.items[:count])})


def _items(outputs: list[ScriptedOutput]) -> list[Item]:
    items: list[Item] = []
    for output in outputs:
        if isinstance(output, ScriptedText):
            items.append(
                Message(
                    id=new_id("msg"),
                    role="assistant",
                    content=[OutputText(text=output.text)],
                    status="completed",
                )
            )
        else:
            items.append(
                FunctionCall(
                    id=new_id("fc"),
                    call_id=output.call_id or new_id("call"),
                    name=output.name,
                    arguments=json.dumps(output.arguments),
                    status="completed",
                )
            )
    return items


def _item_text(item: Item) -> str:
    if isinstance(item, Message):
        return item.text
    if isinstance(item, FunctionCall):
        return item.arguments
    return getattr(item, "output", "")


def _word_pieces(value: str) -> list[str]:
    """Split text into word pieces (each keeps its trailing space) that join back to it."""
    pieces = [word + " " for word in value.split(" ")]
    pieces[-1] = pieces[-1][:-1]
    return [piece for piece in pieces if piece]
