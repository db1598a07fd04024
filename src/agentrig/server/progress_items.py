"""What ``crew:<name>`` and ``flow:<name>`` responses share: inputs, progress, the answer.

Both read their inputs from the request's user text (a JSON object is named inputs), both
report their progress as ``reasoning`` items whose summary is one line of text, added to
the output and streamed as they happen, and both end with the final output as the
assistant's message. Reasoning items, not custom event types, so that every event stays
one the Open Responses spec and OpenAI's clients know.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agentrig.items import Item, Message, OutputText, Reasoning, SummaryText

if TYPE_CHECKING:
    from agentrig.server.sse import ResponseEventStream


def request_text(items: list[Item]) -> str:
    """The user text of a request's input items, one paragraph per message."""
    return "\n\n".join(
        item.text for item in items if isinstance(item, Message) and item.role == "user"
    ).strip()


def named_inputs(text: str) -> dict[str, Any] | None:
    """The inputs ``text`` names, if it is a JSON object (``None`` if it is not)."""
    if not text.startswith("{"):
        return None
    try:
        named = json.loads(text)
    except ValueError:
        return None
    return named if isinstance(named, dict) else None


def progress_item(line: str, agent: str | None = None) -> Reasoning:
    return Reasoning(summary=[SummaryText(text=line)], agent=agent or None)


def add_output(turn: Any, item: Item, stream: ResponseEventStream | None, send: Any) -> None:
    """Add ``item`` to the turn's output, and stream it if the response is streamed."""
    turn.output.append(item)
    if stream is not None:
        for wire_event in stream.item(item):
            send(wire_event)


def answer(turn: Any, text: str, stream: ResponseEventStream | None, send: Any) -> None:
    """End the turn's output with ``text`` as the assistant's message (none if empty)."""
    if text:
        message = Message(role="assistant", content=[OutputText(text=text)], status="completed")
        add_output(turn, message, stream, send)
