"""Running jobs: claim a job row, run its handler under a lease, record the outcome.

Both queue backends run jobs through :class:`JobRunner`. While a handler runs, a
heartbeat extends the job's lease every third of ``lease_seconds``; if the process dies,
the lease runs out and another worker's :meth:`JobRunner.run_due` claims the job again.
Handlers must therefore be idempotent (indexing a document twice leaves the same
chunks). A failure is retried with exponential backoff until ``max_attempts``; a
:class:`PermanentJobError` fails the job at once (bad input does not get better).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentrig.store.jobs import Job, JobStore

log = logging.getLogger(__name__)


class PermanentJobError(Exception):
    """A job that cannot succeed on a retry: it fails at once with this message."""


Handler = Callable[[Job], Awaitable[Any]]


def worker_name() -> str:
    """``host:pid``, unique among live workers."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobRunner:
    """Claims and runs jobs of the types in ``handlers``."""

    jobs: JobStore
    handlers: Mapping[str, Handler]
    worker: str
    lease_seconds: float = 60.0
    retry_delay_seconds: float = 1.0

    async def run_due(self) -> bool:
        """Claim the oldest due job (or one whose lease ran out) and run it; ``False`` if
        there was none."""
        job = await self.jobs.claim(
            self.worker, lease_seconds=self.lease_seconds, types=tuple(self.handlers)
        )
        if job is None:
            return False
        await self.run(job)
        return True

    async def run_id(self, job_id: str) -> Job | None:
        """Run the job ``job_id`` if it can be claimed (not finished, not leased to a live
        worker); the job as it ends, or ``None`` if it was not claimable."""
        job = await self.jobs.claim(self.worker, lease_seconds=self.lease_seconds, job_id=job_id)
        if job is None:
            return None
        await self.run(job)
        return await self.jobs.get(job.id)

    async def run(self, job: Job) -> None:
        """Run a claimed job to its outcome."""
        handler = self.handlers.get(job.type)
        if handler is None:
            await self.jobs.fail(job, self.worker, f"no handler for {job.type!r}", retry_after=None)
            return
        beating = asyncio.create_task(self._heartbeat(job))
        try:
            result = await handler(job)
        except PermanentJobError as exc:
            await self.jobs.fail(job, self.worker, str(exc), retry_after=None)
        except Exception as exc:
            delay = self.retry_delay_seconds * 2 ** (job.attempts - 1)
            log.warning("job %s (%s) attempt %d failed: %s", job.id, job.type, job.attempts, exc)
            await self.jobs.fail(
                job, self.worker, f"{type(exc).__name__}: {exc}", retry_after=delay
            )
        else:
            if not await self.jobs.succeed(job, self.worker, result):
                log.warning("job %s finished after it was taken over: result dropped", job.id)
        finally:
            beating.cancel()
            # wait() does not raise the heartbeat's cancellation, so a cancel of this task
            # (the queue closing) is not swallowed here.
            await asyncio.wait([beating])

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.jobs.heartbeat(
                    job, self.worker, lease_seconds=self.lease_seconds
                ):
                    log.warning("job %s was taken over by another worker", job.id)
                    return
            except Exception:  # the database is away for a moment: try at the next beat
                log.warning("heartbeat of job %s failed", job.id, exc_info=True)
