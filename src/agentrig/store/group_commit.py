"""Group commit: the writes that arrive while one transaction runs share the next one.

A caller submits one operation and waits until it is committed, as with its own
transaction, but under load one transaction carries every operation that queued while
the previous one ran: on SQLite a commit per stored response cost more CPU than the
rest of a gateway request, and concurrent writers queued on SQLite's single write lock.
With one request at a time each operation still gets a transaction at once (no timer,
no added wait). If a shared transaction fails, its operations are retried one by one,
so that one bad operation fails alone. Hand-written because it is a few lines of
asyncio; the write itself is the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Op = TypeVar("Op")
Result = TypeVar("Result")
# Writes every operation of a batch in one transaction; an exception in the list fails
# that operation alone, an exception raised fails the transaction.
BatchWriter = Callable[[Sequence[Op]], Awaitable[Sequence[Result | BaseException]]]


class GroupCommit(Generic[Op, Result]):
    """Queues operations and writes them with ``write``, a batch per transaction."""

    def __init__(self, write: BatchWriter, *, max_batch: int = 256) -> None:
        self._write = write
        self.max_batch = max_batch
        self._pending: list[tuple[Op, asyncio.Future[Result]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, operation: Op) -> Result:
        """Write ``operation``; returns once its transaction has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((operation, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="agentrig-group-commit")
        # A cancelled caller (a client gone) cancels its wait, not the write of its batch.
        return await future

    async def aclose(self) -> None:
        """Wait for the queued operations to be written."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                outcomes = await self._write([operation for operation, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    outcomes = [exc]
                else:
                    outcomes = [await self._alone(operation) for operation, _ in batch]
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _alone(self, operation: Op) -> Result | BaseException:
        try:
            [outcome] = await self._write([operation])
        except Exception as exc:
            return exc
        return outcome
