"""Job rows on SQLite and PostgreSQL: claims, leases taken over, fencing, retries."""

from __future__ import annotations

import asyncio

from agentrig.store import Database
from agentrig.store.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, JobStore


async def test_a_job_is_claimed_once_and_succeeds(database: Database):
    jobs = JobStore(database)
    job = await jobs.enqueue("index_document", "t1", {"document_id": "doc_1"})
    assert (job.status, job.attempts, job.payload) == (QUEUED, 0, {"document_id": "doc_1"})
    claimed = await jobs.claim("w1", lease_seconds=30)
    assert claimed is not None and claimed.id == job.id
    assert (claimed.status, claimed.attempts, claimed.worker) == (RUNNING, 1, "w1")
    assert await jobs.claim("w2", lease_seconds=30) is None  # nothing else to do
    assert await jobs.succeed(claimed, "w1", {"chunks": 3})
    done = await jobs.get(job.id)
    assert (done.status, done.result, done.finished) == (SUCCEEDED, {"chunks": 3}, True)
    assert await jobs.get(job.id, tenant="another") is None


async def test_concurrent_workers_never_claim_the_same_job(database: Database):
    jobs = JobStore(database)
    for n in range(20):
        await jobs.enqueue("t", "tenant", {"n": n})

    async def worker(name: str) -> list[str]:
        mine = []
        while (job := await jobs.claim(name, lease_seconds=30)) is not None:
            mine.append(job.id)
            await jobs.succeed(job, name, None)
        return mine

    claimed = await asyncio.gather(*(worker(f"w{i}") for i in range(5)))
    everything = [job_id for ids in claimed for job_id in ids]
    assert len(everything) == len(set(everything)) == 20
    assert await jobs.count(SUCCEEDED) == 20


async def test_an_expired_lease_is_taken_over_and_the_old_worker_is_fenced(database: Database):
    jobs = JobStore(database)
    job = await jobs.enqueue("t", "tenant", {})
    first = await jobs.claim("dead", lease_seconds=0.05)
    assert await jobs.claim("w2", lease_seconds=30) is None  # the lease still runs
    await asyncio.sleep(0.1)
    second = await jobs.claim("w2", lease_seconds=30)
    assert second is not None and second.id == job.id and second.attempts == 2
    assert not await jobs.succeed(first, "dead", "stale")  # fenced: no longer its job
    assert not await jobs.heartbeat(first, "dead", lease_seconds=30)
    assert await jobs.heartbeat(second, "w2", lease_seconds=30)
    assert await jobs.succeed(second, "w2", "fresh")
    assert (await jobs.get(job.id)).result == "fresh"


async def test_a_job_whose_worker_died_comes_before_the_queue_which_goes_in_due_order(
    database: Database,
):
    jobs = JobStore(database)
    abandoned = await jobs.enqueue("t", "tenant", {"n": 0})
    assert (await jobs.claim("dead", lease_seconds=0.05)).id == abandoned.id
    retried = await jobs.enqueue("t", "tenant", {"n": 1})
    assert await jobs.fail(await jobs.claim("w", lease_seconds=30), "w", "x", retry_after=0.1)
    waiting = [await jobs.enqueue("t", "tenant", {"n": n}) for n in range(2, 5)]
    await asyncio.sleep(0.15)  # the lease has passed, the retry has come due
    order = []
    while (job := await jobs.claim("w", lease_seconds=30)) is not None:
        order.append(job.id)
    assert order == [abandoned.id] + [job.id for job in waiting] + [retried.id]


async def test_failures_are_retried_after_a_delay_then_fail_for_good(database: Database):
    jobs = JobStore(database)
    job = await jobs.enqueue("t", "tenant", {}, max_attempts=2)
    first = await jobs.claim("w", lease_seconds=30)
    assert await jobs.fail(first, "w", "boom 1", retry_after=0.1)
    assert (await jobs.get(job.id)).status == QUEUED
    assert await jobs.claim("w", lease_seconds=30) is None  # not due yet
    await asyncio.sleep(0.15)
    second = await jobs.claim("w", lease_seconds=30)
    assert second is not None and second.attempts == 2
    assert await jobs.fail(second, "w", "boom 2", retry_after=0.1)  # no attempts left
    final = await jobs.get(job.id)
    assert (final.status, final.error, final.finished) == (FAILED, "boom 2", True)
    assert await jobs.claim("w", lease_seconds=30) is None


async def test_claim_by_id_and_by_type(database: Database):
    jobs = JobStore(database)
    older = await jobs.enqueue("a", "tenant", {})
    wanted = await jobs.enqueue("b", "tenant", {})
    assert (await jobs.claim("w", lease_seconds=30, job_id=wanted.id)).id == wanted.id
    assert await jobs.claim("w", lease_seconds=30, types=("b",)) is None
    assert (await jobs.claim("w", lease_seconds=30, types=("a",))).id == older.id
