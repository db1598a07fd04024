"""Both queue backends run jobs from their rows: retries, permanent failures, and jobs
of a dead worker finished by another (in process, and arq on the real Redis)."""

from __future__ import annotations

import asyncio
import time

from agentrig.config import JobsSettings
from agentrig.jobs.queue import LocalJobQueue
from agentrig.jobs.redis import RedisJobQueue, run_worker
from agentrig.jobs.runner import PermanentJobError
from agentrig.store import Database
from agentrig.store.jobs import FAILED, SUCCEEDED, JobStore

SETTINGS = JobsSettings(concurrency=3, max_attempts=3, retry_delay_seconds=0.05, lease_seconds=0.6)


class Handlers:
    """Echoes payloads; ``flaky`` fails its first attempt, ``bad`` fails for good."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def table(self):
        async def echo(job):
            self.calls.append((job.payload["n"], job.attempts))
            if job.payload.get("flaky") and job.attempts == 1:
                raise RuntimeError("flaky the first time")
            if job.payload.get("bad"):
                raise PermanentJobError("bad input: no such document")
            return {"echo": job.payload["n"]}

        return {"echo": echo}


async def wait_finished(jobs: JobStore, ids: list[str], seconds: float = 15.0) -> list:
    deadline = time.monotonic() + seconds
    while True:
        found = [await jobs.get(job_id) for job_id in ids]
        if all(job.finished for job in found):
            return found
        assert time.monotonic() < deadline, [(j.id, j.status, j.error) for j in found]
        await asyncio.sleep(0.05)


async def test_local_queue_runs_retries_and_fails_for_good(database: Database):
    jobs, handlers = JobStore(database), Handlers()
    queue = LocalJobQueue(jobs, handlers.table(), SETTINGS, poll_seconds=0.05)
    await queue.start()
    try:
        ids = [(await queue.enqueue("echo", "t", {"n": n})).id for n in range(10)]
        flaky = (await queue.enqueue("echo", "t", {"n": 99, "flaky": True})).id
        bad = (await queue.enqueue("echo", "t", {"n": 98, "bad": True})).id
        unknown = (await queue.enqueue("nothing", "t", {"n": 97})).id
        done = await wait_finished(jobs, [*ids, flaky, bad])
    finally:
        await queue.aclose()
    assert [job.result for job in done[:10]] == [{"echo": n} for n in range(10)]
    assert (done[10].status, done[10].attempts, done[10].result) == (SUCCEEDED, 2, {"echo": 99})
    assert (done[11].status, done[11].attempts) == (FAILED, 1)
    assert done[11].error == "bad input: no such document"
    assert (await jobs.get(unknown)).status == "queued"  # no handler here: left for another


async def test_local_queue_finishes_the_job_of_a_dead_worker(database: Database):
    jobs, handlers = JobStore(database), Handlers()
    orphan = await jobs.enqueue("echo", "t", {"n": 1})
    assert await jobs.claim("a-worker-that-died", lease_seconds=0.3) is not None
    queue = LocalJobQueue(jobs, handlers.table(), SETTINGS, poll_seconds=0.05)
    await queue.start()  # "after a restart"
    try:
        [job] = await wait_finished(jobs, [orphan.id])
    finally:
        await queue.aclose()
    assert (job.status, job.attempts, job.result) == (SUCCEEDED, 2, {"echo": 1})


async def test_redis_queue_with_workers_on_the_real_redis(database: Database):
    jobs = JobStore(database)
    queue = RedisJobQueue(jobs, SETTINGS)
    assert await queue.ping()
    handlers = Handlers()

    async def make_handlers():
        async def close() -> None:
            return None

        return handlers.table(), close

    workers = [
        asyncio.create_task(run_worker(jobs, SETTINGS, make_handlers, poll_seconds=0.05))
        for _ in range(2)
    ]
    try:
        ids = [(await queue.enqueue("echo", "t", {"n": n})).id for n in range(20)]
        flaky = (await queue.enqueue("echo", "t", {"n": 99, "flaky": True})).id
        done = await wait_finished(jobs, [*ids, flaky])
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await queue.aclose()
    assert [job.result for job in done[:20]] == [{"echo": n} for n in range(20)]
    assert done[20].attempts == 2 and done[20].status == SUCCEEDED
    ran = sorted(n for n, _ in handlers.calls if n != 99)
    assert ran == list(range(20))  # each job ran once


async def test_closing_the_queue_right_after_a_job_finishes_does_not_hang(database: Database):
    jobs, handlers = JobStore(database), Handlers()
    queue = LocalJobQueue(jobs, handlers.table(), SETTINGS, poll_seconds=0.05)
    await queue.start()
    job = await queue.enqueue("echo", "t", {"n": 1})
    await wait_finished(jobs, [job.id])
    async with asyncio.timeout(10):  # hung for ever when a worker swallowed the cancel
        await queue.aclose()
