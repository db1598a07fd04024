"""The job queue: enqueue work, and the in-process backend that runs it.

``JobQueue`` is what the server uses: ``enqueue`` writes the job row (the record of
truth) and tells the workers. Two backends:

* :class:`LocalJobQueue` (the default): ``concurrency`` asyncio workers inside the server
  process, over the job rows. They wake at once for a job enqueued here and look at the
  table every ``poll_seconds`` for the rest: retries that have come due, and jobs whose
  worker died (their lease ran out), so unfinished jobs are picked up after a restart.
* :class:`~agentrig.jobs.redis.RedisJobQueue`: arq on Redis, run by ``agentrig worker``
  processes on any number of machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from agentrig.config import JobsSettings
from agentrig.jobs.runner import Handler, JobRunner, worker_name
from agentrig.store.jobs import Job, JobStore

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    jobs: JobStore
    kind: str  # what carries the jobs, for /ready: "in process" or "redis"

    async def enqueue(self, type: str, tenant: str, payload: dict[str, Any]) -> Job: ...

    async def ping(self) -> bool: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class LocalJobQueue:
    """Runs jobs in this process with asyncio workers over the job rows."""

    kind = "in process"

    def __init__(
        self,
        jobs: JobStore,
        handlers: Mapping[str, Handler],
        settings: JobsSettings | None = None,
        *,
        poll_seconds: float = 1.0,
    ) -> None:
        settings = settings or JobsSettings()
        self.jobs = jobs
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.runner = JobRunner(
            jobs,
            handlers,
            worker_name(),
            lease_seconds=settings.lease_seconds,
            retry_delay_seconds=settings.retry_delay_seconds,
        )
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    async def enqueue(self, type: str, tenant: str, payload: dict[str, Any]) -> Job:
        job = await self.jobs.enqueue(
            type, tenant, payload, max_attempts=self.settings.max_attempts
        )
        self._wake.set()
        return job

    async def ping(self) -> bool:
        """Always ``True``: the job rows are the database's, which ``/ready`` checks."""
        return True

    async def start(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"agentrig-job-worker-{n}")
                for n in range(self.settings.concurrency)
            ]

    async def aclose(self) -> None:
        """Stop the workers; a job cut short is run again (its lease runs out)."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def _work(self) -> None:
        while True:
            self._wake.clear()  # before the claim: a job enqueued after it wakes us again
            try:
                ran = await self.runner.run_due()
            except Exception:  # the database is away for a moment
                log.warning("job worker could not claim a job", exc_info=True)
                ran = False
            if ran:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
