"""Searches before writes: a writer waits while a search runs, never longer than its patience."""

from __future__ import annotations

import asyncio
import threading
import time

from agentrig.knowledge.foreground import SearchesFirst


async def test_a_writer_goes_on_at_once_when_no_search_runs() -> None:
    gate = SearchesFirst(patience=5)
    started = time.perf_counter()
    await gate.finished()
    assert time.perf_counter() - started < 0.5


async def test_a_writer_waits_for_the_search_and_goes_on_when_it_ends() -> None:
    gate, order = SearchesFirst(patience=5), []

    async def write() -> None:
        await gate.finished()
        order.append("write")

    with gate.searching():
        writer = asyncio.create_task(write())
        await asyncio.sleep(0.1)
        assert not writer.done() and gate.running == 1
        order.append("search done")
    await asyncio.wait_for(writer, 1)  # woken, long before its patience
    assert order == ["search done", "write"] and gate.running == 0


async def test_a_writer_waits_for_every_search_not_the_first_to_end() -> None:
    gate = SearchesFirst(patience=5)
    with gate.searching():
        with gate.searching():
            writer = asyncio.create_task(gate.finished())
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        assert not writer.done() and gate.running == 1
    await asyncio.wait_for(writer, 1)


async def test_a_search_that_does_not_end_holds_a_writer_back_for_its_patience_alone() -> None:
    gate = SearchesFirst(patience=0.2)
    with gate.searching():
        started = time.perf_counter()
        await gate.finished()
        waited = time.perf_counter() - started
        assert 0.15 < waited < 2
        assert gate._waiters == []  # the timed-out writer left nothing behind
    await gate.finished()


async def test_a_search_on_another_thread_wakes_a_writer_on_this_loop() -> None:
    gate, ended = SearchesFirst(patience=5), threading.Event()
    inside, release = threading.Event(), threading.Event()

    def search() -> None:
        with gate.searching():
            inside.set()
            release.wait(5)
        ended.set()

    thread = threading.Thread(target=search)
    thread.start()
    assert inside.wait(5)
    writer = asyncio.create_task(gate.finished())
    await asyncio.sleep(0.05)
    assert not writer.done()
    release.set()
    await asyncio.wait_for(writer, 1)
    assert ended.is_set()
    thread.join(5)


async def test_a_search_that_raises_still_ends() -> None:
    gate = SearchesFirst(patience=5)
    try:
        with gate.searching():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gate.running == 0
