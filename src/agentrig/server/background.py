"""Background responses: the tasks that complete them, and cancelling them from anywhere.

A background response runs as a task of the server process that created it. A cancel
may reach another process (``agentrig serve --workers N``, or several servers on one
database): there it marks the stored response ``cancelled`` if it is still queued or in
progress, and the process running it sees the mark within ``poll_interval`` and cancels
its task. The task's own writes are conditional on the stored status (see
:meth:`~agentrig.store.responses.ResponseStore.update_response`), so a late
``in_progress`` or ``completed`` never overwrites a cancel.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from agentrig.store.responses import ResponseStore

RUNNING = ("queued", "in_progress")
log = logging.getLogger(__name__)


class BackgroundResponses:
    """The background responses this process runs."""

    def __init__(self, responses: ResponseStore, *, poll_interval: float = 0.25) -> None:
        self.responses = responses
        self.poll_interval = poll_interval
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None

    def start(self, response_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work``, the completion of the queued response ``response_id``."""
        task = asyncio.create_task(work, name=f"agentrig-background-{response_id}")
        self.tasks[response_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(response_id, None))
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="agentrig-cancel-watcher")

    async def cancel(self, tenant: str, response_id: str, resource: dict[str, Any]) -> None:
        """Cancel the response, here or (by its stored status) in the process running it.

        ``resource`` is the stored response object; a response that has finished stays as
        it is.
        """
        task = self.tasks.get(response_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        cancelled = resource | {"status": "cancelled", "completed_at": int(time.time())}
        await self.responses.update_response(
            tenant, response_id, cancelled, [], only_if_status=RUNNING
        )

    async def aclose(self) -> None:
        """Cancel every task (each records its response as cancelled)."""
        tasks = [*self.tasks.values(), *([self._watcher] if self._watcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self) -> None:
        """While tasks run here, cancel those whose response another process cancelled."""
        while self.tasks:
            await asyncio.sleep(self.poll_interval)
            try:
                cancelled = await self.responses.with_status(list(self.tasks), "cancelled")
            except Exception:  # the database is away for a moment: look again next time
                log.warning("could not read the status of background responses", exc_info=True)
                continue
            for response_id in cancelled:
                task = self.tasks.get(response_id)
                if task is not None:
                    task.cancel()
