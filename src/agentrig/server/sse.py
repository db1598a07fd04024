"""The Server-Sent Events of one response, in the order and shape OpenAI clients expect.

``ResponseEventStream`` turns agentrig's stream events (a model's deltas, or an agent
run's events) into ``response.*`` events with a strictly increasing ``sequence_number``:
created, in_progress, then per output item added / content_part.added / deltas / done,
and finally completed, incomplete or failed. ``encode_sse`` frames one event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentrig.agents import events as run
from agentrig.items import FunctionCall, Item, new_id
from agentrig.llm import types as llm
from agentrig.server.wire import _PREFIX, JSON, _part, output_item

_TEXT_KEY = {"output_text": "text", "refusal": "refusal"}
_BLANK: dict[str, JSON] = {"message": {"content": []}, "function_call": {"arguments": ""}}


@dataclass(slots=True)
class _Open:
    """An output item whose deltas are being streamed; ``key`` is their item_id (maybe "")."""

    id: str
    key: str
    index: int
    kind: str  # "message" or "function_call"
    agent: str | None
    call_id: str = ""
    name: str = ""
    pieces: list[str] = field(default_factory=list)

    def item(self, status: str) -> JSON:
        text = "".join(self.pieces) if status != "in_progress" else ""
        data: JSON = {"id": self.id, "type": self.kind, "status": status}
        if self.kind == "message":
            parts = (
                [_part({"type": "output_text", "text": text})] if status != "in_progress" else []
            )
            data |= {"role": "assistant", "content": parts}
        else:
            data |= {"call_id": self.call_id, "name": self.name, "arguments": text}
        return data | ({"agent": self.agent} if self.agent else {})

    def matches(self, item: Item) -> bool:
        if item.type != self.kind:
            return False
        if isinstance(item, FunctionCall) and self.call_id:
            return item.call_id == self.call_id
        return not self.key or not item.id or item.id == self.key


class ResponseEventStream:
    """The SSE events of one response, numbered from 0: ``created``, ``in_progress``, what
    ``feed`` gives for each model or agent event, ``finish`` (closes an item left open, say
    ``"incomplete"`` when cut), then ``completed``, ``incomplete`` or ``failed``.

    As in OpenAI's streams one item is open at a time: a delta of a new item closes the open
    one from what was streamed, and its own "done" later adds nothing. Of an agent run only
    the running agent's events are output: ``agent`` (by default the first run event's)
    follows handoffs; nested runs (agents as tools, guardrails) are not in the run's output."""

    def __init__(self, agent: str | None = None) -> None:
        self.agent = agent
        self._sequence = self._next_index = 0
        self._open: _Open | None = None
        self._closed_early: list[_Open] = []

    def _e(self, kind: str, **fields: Any) -> JSON:
        event = {"type": f"response.{kind}", "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def created(self, resource: JSON) -> JSON:
        return self._e("created", response=resource)

    def in_progress(self, resource: JSON) -> JSON:
        return self._e("in_progress", response=resource)

    def completed(self, resource: JSON) -> JSON:
        return self._e("completed", response=resource)

    def incomplete(self, resource: JSON) -> JSON:
        return self._e("incomplete", response=resource)

    def failed(self, resource: JSON) -> JSON:
        return self._e("failed", response=resource)

    def error_event(
        self,
        message: str,
        code: str | None = None,
        *,
        kind: str = "server_error",
        param: str | None = None,
    ) -> JSON:
        """The spec nests ``error``; OpenAI's clients read ``code``/``message`` at the top: both."""
        error = {"type": kind, "code": code, "message": message, "param": param}
        event = self._e("error", code=code, message=message, param=param, error=error)
        return event | {"type": "error"}  # not "response.error"

    def finish(self, status: str = "completed") -> list[JSON]:
        """Close the item still open, if any, from what was streamed."""
        entry, self._open = self._open, None
        if entry is None:
            return []
        self._closed_early.append(entry)
        return self._done(entry.index, entry.item(status), streamed=True)

    def feed(self, event: llm.ModelStreamEvent | run.RunEvent) -> list[JSON]:
        """The events for one model stream event or run event (others give none)."""
        agent = getattr(event, "agent", None)
        if isinstance(event, run.AgentChanged):
            self.agent = event.agent if self.agent in (None, event.previous) else self.agent
            return []
        if isinstance(event, run.TextDeltaEvent | run.ToolArgumentsDeltaEvent | run.ItemEvent):
            self.agent = self.agent or agent
            if agent != self.agent:
                return []  # a nested run's
        if isinstance(event, llm.TextDelta | run.TextDeltaEvent):
            return self._delta("message", event.item_id, event.delta, agent)
        if isinstance(event, llm.ToolCallDelta | run.ToolArgumentsDeltaEvent):
            call = (event.call_id, event.name)
            return self._delta("function_call", event.item_id, event.delta, agent, *call)
        if isinstance(event, llm.ItemDone | run.ItemEvent):
            return self._item(event.item)
        return []

    def item(self, item: Item) -> list[JSON]:
        """The events of a whole item added to the output (a crew's progress and answer)."""
        return self._item(item)

    def _delta(
        self, kind: str, key: str, delta: str, agent: str | None, call_id: str = "", name: str = ""
    ) -> list[JSON]:
        entry, events = self._open, []
        if entry is None or (entry.kind, entry.key, entry.call_id) != (kind, key, call_id):
            if key and any(early.key == key for early in self._closed_early):
                return []  # a late piece of an item closed early: its final form carries it
            events, index = self.finish(), self._next_index
            self._next_index += 1
            entry = _Open(key or new_id(_PREFIX[kind]), key, index, kind, agent, call_id, name)
            self._open = entry
            events.append(
                self._e("output_item.added", output_index=index, item=entry.item("in_progress"))
            )
            if kind == "message":
                part = _part({"type": "output_text", "text": ""})
                events.append(self._e("content_part.added", **_at(entry.id, index, 0), part=part))
        entry.pieces.append(delta)
        if kind == "message":
            at = _at(entry.id, entry.index, 0)
            return [*events, self._e("output_text.delta", **at, delta=delta, logprobs=[])]
        at = _at(entry.id, entry.index)
        return [*events, self._e("function_call_arguments.delta", **at, delta=delta)]

    def _item(self, item: Item) -> list[JSON]:
        if self._open is not None and self._open.matches(item):
            entry, self._open = self._open, None
            item.id = entry.id
            return self._done(entry.index, output_item(item), streamed=True)
        for early in self._closed_early:
            if early.matches(item):
                self._closed_early.remove(early)
                item.id = early.id
                return []
        events, index, data = self.finish(), self._next_index, output_item(item)
        self._next_index += 1
        added = data | _BLANK.get(item.type, {}) | ({"summary": []} if "summary" in data else {})
        if "status" in added:
            added["status"] = "in_progress"
        events.append(self._e("output_item.added", output_index=index, item=added))
        return events + self._done(index, data, streamed=False)

    def _done(self, index: int, data: JSON, *, streamed: bool) -> list[JSON]:
        """The events after ``output_item.added`` (and any deltas), to ``output_item.done``."""
        events, at = [], _at(data["id"], index)
        if data["type"] == "message":
            for j, part in enumerate(data["content"]):
                events += self._part(_at(data["id"], index, j), part, opened=streamed and not j)
        elif data["type"] == "function_call":
            arguments = data["arguments"]
            if not streamed and arguments:
                events.append(self._e("function_call_arguments.delta", **at, delta=arguments))
            events.append(self._e("function_call_arguments.done", **at, arguments=arguments))
        for j, part in enumerate(data.get("summary", [])):  # reasoning
            at_j, text = {**at, "summary_index": j}, part["text"]
            events += [
                self._e("reasoning_summary_part.added", **at_j, part={**part, "text": ""}),
                self._e("reasoning_summary_text.delta", **at_j, delta=text),
                self._e("reasoning_summary_text.done", **at_j, text=text),
                self._e("reasoning_summary_part.done", **at_j, part=part),
            ]
        return [*events, self._e("output_item.done", output_index=index, item=data)]

    def _part(self, at: JSON, part: JSON, *, opened: bool) -> list[JSON]:
        key = _TEXT_KEY.get(part["type"])
        events = (
            []
            if opened
            else [self._e("content_part.added", **at, part=part | ({key: ""} if key else {}))]
        )
        if key is not None:
            name, logprobs = ("output_text", {"logprobs": []}) if key == "text" else ("refusal", {})
            if not opened and part[key]:
                events.append(self._e(f"{name}.delta", **at, delta=part[key], **logprobs))
            events.append(self._e(f"{name}.done", **at, **{key: part[key]}, **logprobs))
        return [*events, self._e("content_part.done", **at, part=part)]


def _at(item_id: str, index: int, content_index: int | None = None) -> JSON:
    at: JSON = {"item_id": item_id, "output_index": index}
    return at if content_index is None else at | {"content_index": content_index}


def encode_sse(event: JSON) -> bytes:
    """One Server-Sent Event: ``event: <type>`` and the compact JSON as ``data``."""
    payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {payload}\n\n".encode()


# --- other objects -----------------------------------------------------------------------
