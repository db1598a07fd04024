"""Streaming a run: model deltas become run events, and a queue carries them to the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from agentrig.agents.events import RunEvent, RunFinished, TextDeltaEvent, ToolArgumentsDeltaEvent
from agentrig.errors import ProviderUnavailable
from agentrig.llm.types import (
    Completed,
    LLMClient,
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolCallDelta,
)


async def infer_streamed(
    client: LLMClient, request: ModelRequest, agent: str, emit: Callable[[RunEvent], None]
) -> ModelResponse:
    """One streamed model call: forward its deltas as events, return the whole response."""
    response: ModelResponse | None = None
    async for event in client.stream(request):
        if isinstance(event, TextDelta):
            emit(TextDeltaEvent(agent, event.item_id, event.delta))
        elif isinstance(event, ToolCallDelta):
            emit(
                ToolArgumentsDeltaEvent(
                    agent, event.item_id, event.call_id, event.name, event.delta
                )
            )
        elif isinstance(event, Completed):
            response = event.response
    if response is None:
        raise ProviderUnavailable("the model's stream ended without a response")
    return response


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class RunResultStreaming:
    """A streamed run: iterate :meth:`events`; ``result`` is set when the run finishes.

    ``final_event`` is the event type that ends the stream and carries the ``result``
    (crews stream the same way, ending with their own)."""

    final_event: type[Any] = RunFinished

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.result: Any = None
        self.task: asyncio.Task[Any] | None = None

    def push(self, event: RunEvent) -> None:
        self._queue.put_nowait(event)

    def fail(self, error: BaseException) -> None:
        self._queue.put_nowait(_Failed(error))

    async def events(self) -> AsyncIterator[RunEvent]:
        """The run's events, ending with ``RunFinished``; a failed run raises its error.

        A consumer that goes away before the end (its task cancelled, or the iterator
        closed) cancels the run: nobody would read what the model still produces."""
        finished = False
        try:
            while True:
                event = await self._queue.get()
                if isinstance(event, _Failed):
                    finished = True
                    raise event.error
                yield event
                if isinstance(event, self.final_event):
                    finished = True
                    self.result = event.result
                    return
        finally:
            if not finished:
                self.cancel()

    def cancel(self) -> None:
        """Stop the run (what it produced so far stays in its session)."""
        if self.task is not None:
            self.task.cancel()
