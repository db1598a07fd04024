"""Group commit: concurrent operations share transactions; each caller gets its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from agentrig.store.group_commit import GroupCommit


class Recorder:
    """A batch writer that records its batches; ``bad`` operations fail, ``poison`` ones
    make the whole transaction raise."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def write(self, batch):
        self.batches.append(list(batch))
        await asyncio.sleep(0.01)  # a transaction takes time: others queue meanwhile
        if any(n < 0 for n in batch):
            raise RuntimeError(f"poisoned batch {batch}")
        return [ValueError(f"bad {n}") if n % 10 == 7 else n * 2 for n in batch]


async def test_one_operation_alone_is_written_at_once():
    recorder = Recorder()
    commits = GroupCommit(recorder.write)
    assert await commits.submit(3) == 6
    assert recorder.batches == [[3]]


async def test_concurrent_operations_share_transactions_and_get_their_own_results():
    recorder = Recorder()
    commits = GroupCommit(recorder.write)
    results = await asyncio.gather(
        *(commits.submit(n) for n in range(1, 51)), return_exceptions=True
    )
    for n, result in zip(range(1, 51), results, strict=True):
        if n % 10 == 7:
            assert isinstance(result, ValueError) and str(result) == f"bad {n}"
        else:
            assert result == n * 2
    assert sorted(n for batch in recorder.batches for n in batch) == list(range(1, 51))
    assert len(recorder.batches) <= 3  # the first alone, then the rest together


async def test_a_failing_transaction_is_retried_one_by_one_so_only_its_culprit_fails():
    recorder = Recorder()
    commits = GroupCommit(recorder.write)
    results = await asyncio.gather(
        commits.submit(1),
        commits.submit(2),
        commits.submit(-5),
        commits.submit(4),
        return_exceptions=True,
    )
    assert results[0] == 2 and results[1] == 4 and results[3] == 8
    assert isinstance(results[2], RuntimeError) and "poisoned" in str(results[2])
    assert [-5] in recorder.batches  # retried alone


async def test_batches_are_bounded():
    recorder = Recorder()
    commits = GroupCommit(recorder.write, max_batch=10)
    await asyncio.gather(*(commits.submit(n) for n in range(100, 150)), return_exceptions=True)
    assert max(len(batch) for batch in recorder.batches) == 10


async def test_a_cancelled_caller_does_not_cancel_the_write():
    recorder = Recorder()
    commits = GroupCommit(recorder.write)
    waiting = asyncio.create_task(commits.submit(8))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await commits.aclose()
    assert recorder.batches == [[8]]
