"""A handle on one vector engine process (``engine.py``): requests in, answers out.

:meth:`EngineProcess.submit` returns a :class:`concurrent.futures.Future`, which any thread
may wait on and any event loop may await (:meth:`call`), so a handle does not belong to
one loop: stores are shared by every loop and thread of a process. Two threads per
process move the bytes, a writer (a large upsert never blocks its caller on a full pipe)
and a reader that settles the futures in order; a third forwards the engine's stderr to
the log. If the engine dies, every pending and later request fails with
:class:`EngineError`, naming its exit code and the last lines it wrote.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any

from agentrig.knowledge.engine import read_frame, write_frame

__all__ = ["EngineClosed", "EngineError", "EngineProcess"]

log = logging.getLogger("agentrig.knowledge.engine")
ENGINE_SCRIPT = Path(__file__).with_name("engine.py")


class EngineError(RuntimeError):
    """A request the engine refused or could not answer."""


class EngineClosed(EngineError):
    """The engine was closed (or is closing): ask the knowledge base's current one."""


class EngineProcess:
    """One child process serving one shard folder; ``name`` labels its log lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._process = subprocess.Popen(
            [sys.executable, "-u", str(ENGINE_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._ids = itertools.count()
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()  # guards _pending and _closing
        self._closing = False
        self._failure: EngineError | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._outbox: queue.SimpleQueue[tuple[int, str, dict[str, Any]] | None] = (
            queue.SimpleQueue()
        )
        for target in (self._write, self._read, self._drain_stderr):
            threading.Thread(target=target, name=f"engine-{name}", daemon=True).start()

    @property
    def failed(self) -> bool:
        """Whether the engine died (not closed by its owner): its requests all fail."""
        return self._failure is not None and not isinstance(self._failure, EngineClosed)

    @property
    def pid(self) -> int:
        return self._process.pid

    def submit(self, method: str, /, **kwargs: Any) -> Future[Any]:
        """Send a request; the future settles with the engine's answer, in send order."""
        future: Future[Any] = Future()
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._closing:
                raise EngineClosed(f"vector engine {self.name} is closed")
            request_id = next(self._ids)
            self._pending[request_id] = future
            if method == "close":
                self._closing = True
            self._outbox.put((request_id, method, kwargs))
        return future

    async def call(self, method: str, /, **kwargs: Any) -> Any:
        return await asyncio.wrap_future(self.submit(method, **kwargs))

    def request(self, method: str, /, **kwargs: Any) -> Any:
        """:meth:`submit` and wait: for threads, never for an event loop."""
        return self.submit(method, **kwargs).result()

    def close(self, timeout: float = 60.0) -> None:
        """Flush and stop the engine, waiting for it; idempotent."""
        with contextlib.suppress(EngineError):  # closed already, or dead: nothing to flush
            self.submit("close").result(timeout)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def kill(self) -> None:
        """Stop the engine at once (tests of recovery; a stuck engine)."""
        self._process.kill()
        self._process.wait()

    # -- the threads ---------------------------------------------------------------------
    def _write(self) -> None:
        stream = self._process.stdin
        assert stream is not None
        while (message := self._outbox.get()) is not None:
            try:
                write_frame(stream, message)
            except (BrokenPipeError, OSError, ValueError):
                return  # the reader sees the engine end and fails what is pending
            if message[1] == "close":
                return

    def _read(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        while True:
            try:
                request_id, ok, result = read_frame(stream)
            except (EOFError, OSError, ValueError):
                break
            with self._lock:
                future = self._pending.pop(request_id)
            if ok:
                _settle(future, result=result)
            else:
                kind, message = result
                error = ValueError if kind == "ValueError" else EngineError
                _settle(future, error=error(f"vector engine {self.name}: {kind}: {message}"))
        code = self._process.wait()
        self._outbox.put(None)
        with self._lock:
            if self._closing and not self._pending:
                self._failure = EngineClosed(f"vector engine {self.name} is closed")
            else:
                tail = " | ".join(self._stderr) or "nothing on stderr"
                self._failure = EngineError(
                    f"vector engine {self.name} (pid {self.pid}) exited with code {code}: {tail}"
                )
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            _settle(future, error=self._failure)

    def _drain_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                log.warning("vector engine %s: %s", self.name, line)


def _settle(future: Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    """Settle ``future`` unless its waiter gave up on it (a cancelled await)."""
    try:
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass  # cancelled: nobody waits for the answer
