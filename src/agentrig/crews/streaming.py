"""``CrewStream``: a crew running in a task, its events handed to the caller as they come.

The queue, the end of the stream and the cancelling of an abandoned one are the agent
runtime's :class:`~agentrig.agents.RunResultStreaming`; a crew's stream ends with
``CrewFinished``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agentrig.agents import RunResultStreaming
from agentrig.crews.events import CrewEvent, CrewFinished
from agentrig.crews.result import CrewResult


class CrewStream(RunResultStreaming):
    """Iterate :meth:`events` (the last is ``CrewFinished``); ``result`` is set at the end.
    A consumer that goes away early cancels the crew."""

    final_event = CrewFinished

    @classmethod
    def start(
        cls, run: Callable[[Callable[[CrewEvent], None]], Awaitable[CrewResult]]
    ) -> CrewStream:
        stream = cls()

        async def go() -> None:
            try:
                result = await run(stream.push)  # type: ignore[arg-type]
            except BaseException as exc:
                stream.fail(exc)
                raise
            stream.push(cls.final_event(result))

        stream.task = asyncio.create_task(go())
        stream.task.add_done_callback(_retrieve)
        return stream

    def events(self) -> AsyncIterator[CrewEvent]:  # type: ignore[override]
        return super().events()  # type: ignore[return-value]

    async def wait(self) -> CrewResult:
        """Consume the events and return the result."""
        async for _ in self.events():
            pass
        return self.result


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # reported through the stream
