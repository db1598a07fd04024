"""``CrewStream``: a crew running in a task, its events handed to the caller as they come."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agentrig.crews.events import CrewEvent, CrewFinished
from agentrig.crews.result import CrewResult


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class CrewStream:
    """Iterate :meth:`events` (the last is ``CrewFinished``); ``result`` is set at the end.
    A consumer that goes away early cancels the crew."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.result: CrewResult | None = None
        self.task: asyncio.Task[Any] | None = None

    @classmethod
    def start(
        cls, run: Callable[[Callable[[CrewEvent], None]], Awaitable[CrewResult]]
    ) -> CrewStream:
        stream = cls()

        async def go() -> None:
            try:
                result = await run(stream._queue.put_nowait)
            except BaseException as exc:
                stream._queue.put_nowait(_Failed(exc))
                raise
            stream._queue.put_nowait(CrewFinished(result))

        stream.task = asyncio.create_task(go())
        stream.task.add_done_callback(_retrieve)
        return stream

    async def events(self) -> AsyncIterator[CrewEvent]:
        finished = False
        try:
            while True:
                event = await self._queue.get()
                if isinstance(event, _Failed):
                    finished = True
                    raise event.error
                yield event
                if isinstance(event, CrewFinished):
                    finished = True
                    self.result = event.result
                    return
        finally:
            if not finished and self.task is not None:
                self.task.cancel()

    async def wait(self) -> CrewResult:
        """Consume the events and return the result."""
        async for _ in self.events():
            pass
        assert self.result is not None
        return self.result


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
