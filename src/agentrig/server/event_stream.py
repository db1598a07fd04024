"""A Server-Sent Events response fed by a producer task, written in bursts.

Starlette's ``StreamingResponse`` writes each chunk its iterator yields and, under
uvicorn, watches for a disconnect in an anyio task group (three tasks a response): for a
stream of small events that machinery cost more than the events. Here the producer runs
as one task and hands encoded events over through a list; the response writes whatever
has accumulated each time it wakes (a burst of deltas is one write), and a second small
task waits for the client to go away and then cancels the producer, so that an
abandoned response stops spending model tokens. Hand-written for that cost; the
protocol part is ASGI's ``http.response.start`` / ``http.response.body``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response

Emit = Callable[[bytes], None]
Producer = Callable[[Emit], Awaitable[None]]


class EventStreamResponse(Response):
    """A response of ``text/event-stream`` bytes that ``produce(emit)`` emits."""

    media_type = "text/event-stream"

    def __init__(self, produce: Producer, *, status_code: int = 200) -> None:
        super().__init__(status_code=status_code, headers={"cache-control": "no-cache"})
        # No length: the body is chunked as it comes.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.produce = produce

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        pending: list[bytes] = []
        ready = asyncio.Event()

        def emit(chunk: bytes) -> None:
            pending.append(chunk)
            ready.set()

        start = {"type": "http.response.start", "status": self.status_code}
        await send(start | {"headers": self.raw_headers})
        producer = asyncio.create_task(self.produce(emit))
        producer.add_done_callback(lambda _: ready.set())
        watcher = asyncio.create_task(_cancel_on_disconnect(receive, producer))
        try:
            while True:
                if not pending and not producer.done():
                    await ready.wait()
                    ready.clear()
                if pending:
                    chunk = b"".join(pending)
                    pending.clear()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                elif producer.done():
                    break
        finally:
            watcher.cancel()
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, watcher, return_exceptions=True)
        if not producer.cancelled() and producer.exception() is not None:
            raise producer.exception()  # type: ignore[misc]
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cancel_on_disconnect(receive: Any, producer: asyncio.Task[None]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            producer.cancel()
            return
