"""The Redis backend: arq carries job ids, ``agentrig worker`` processes run them.

``enqueue`` writes the job row, then an arq job ``run_job(job_id)`` (with the row's id as
arq's job id, so it is queued once). A worker claims the row and runs it like the
in-process backend does (:class:`~agentrig.jobs.runner.JobRunner`): the row, not arq,
says what is done. arq is the fast path; each worker also sweeps the job table every
``poll_seconds`` for retries that have come due and for jobs whose worker died — a
worker killed with SIGKILL stops renewing its lease, and another worker finishes the job
once the lease has run out. arq's own retries are off: a failed attempt is rescheduled in
the row.

Requires ``pip install 'agentrig[redis]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agentrig.config import JobsSettings
from agentrig.jobs.runner import Handler, JobRunner, worker_name
from agentrig.store.jobs import Job, JobStore

log = logging.getLogger(__name__)
QUEUE_NAME = "agentrig:jobs"
_NO_LIMIT = 365 * 24 * 3600  # a job's time is bounded by its lease, not by arq


def _redis_settings(url: str) -> Any:
    from arq.connections import RedisSettings

    return RedisSettings.from_dsn(url)


class RedisJobQueue:
    """Enqueues on Redis for ``agentrig worker`` processes; runs nothing itself."""

    kind = "redis"

    def __init__(self, jobs: JobStore, settings: JobsSettings) -> None:
        self.jobs = jobs
        self.settings = settings
        self._pool: Any = None

    async def start(self) -> None:
        if self._pool is None:
            from arq import create_pool

            self._pool = await create_pool(
                _redis_settings(self.settings.redis_url), default_queue_name=QUEUE_NAME
            )

    async def enqueue(self, type: str, tenant: str, payload: dict[str, Any]) -> Job:
        await self.start()
        job = await self.jobs.enqueue(
            type, tenant, payload, max_attempts=self.settings.max_attempts
        )
        await self._pool.enqueue_job("run_job", job.id, _job_id=job.id)
        return job

    async def ping(self) -> bool:
        await self.start()
        return bool(await self._pool.ping())

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


HandlerFactory = Callable[
    [], Awaitable[tuple[Mapping[str, Handler], Callable[[], Awaitable[None]]]]
]


async def run_worker(
    jobs: JobStore,
    settings: JobsSettings,
    make_handlers: HandlerFactory,
    *,
    poll_seconds: float = 1.0,
    burst: bool = False,
) -> None:
    """Run an ``agentrig worker`` until it is stopped (SIGINT/SIGTERM), or, with
    ``burst``, until the queue is empty. ``make_handlers`` opens what the handlers need
    and returns them with a function that closes it."""
    from arq import Worker, func

    handlers, close = await make_handlers()
    runner = JobRunner(
        jobs,
        handlers,
        worker_name(),
        lease_seconds=settings.lease_seconds,
        retry_delay_seconds=settings.retry_delay_seconds,
    )

    async def run_job(ctx: dict[str, Any], job_id: str) -> None:
        await runner.run_id(job_id)

    async def sweep() -> None:
        while True:
            try:
                while await runner.run_due():
                    pass
            except Exception:  # the database is away for a moment
                log.warning("worker sweep could not claim a job", exc_info=True)
            await asyncio.sleep(poll_seconds)

    worker = Worker(
        functions=[func(run_job, name="run_job", max_tries=1)],
        queue_name=QUEUE_NAME,
        redis_settings=_redis_settings(settings.redis_url),
        max_jobs=settings.concurrency,
        job_timeout=_NO_LIMIT,
        keep_result=0,
        retry_jobs=False,
        burst=burst,
        handle_signals=not burst,
        poll_delay=0.1,
    )
    # A burst sweeps once at the end instead: a sweep running beside it could be cut off
    # in the middle of a job it had claimed when arq's queue ran empty.
    sweeping = None if burst else asyncio.create_task(sweep())
    try:
        await worker.async_run()
        if burst:  # and what the table still holds (retries, orphans)
            while await runner.run_due():
                pass
    finally:
        if sweeping is not None:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
        await worker.close()
        await close()
