"""One migrated :class:`Database` per URL per event loop, shared by what opens it by URL
(sessions, flows) so that a process keeps one engine (and one SQLite writer) per database.

Async connections belong to one event loop; a new loop (as in each test) opens its own.
"""

from __future__ import annotations

import asyncio
import contextlib

from agentrig.config import async_database_url
from agentrig.store.db import Database

_shared: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Task[Database]]] = {}


async def shared_database(url: str) -> Database:
    """The process's :class:`Database` for ``url``, created and migrated on first use."""
    key = async_database_url(url)
    loop = asyncio.get_running_loop()
    entry = _shared.get(key)
    if entry is None or entry[0] is not loop or _failed(entry[1]):
        entry = _shared[key] = (loop, loop.create_task(_open_database(key)))
    return await asyncio.shield(entry[1])


async def close_shared_databases() -> None:
    """Dispose the engines :func:`shared_database` opened in this event loop."""
    loop = asyncio.get_running_loop()
    for key, (owner, task) in list(_shared.items()):
        if owner is loop:
            del _shared[key]
            with contextlib.suppress(Exception):
                await (await task).aclose()


def _failed(task: asyncio.Task[Database]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


async def _open_database(url: str) -> Database:
    database = Database(url)
    try:
        await database.upgrade()
    except BaseException:
        await database.aclose()
        raise
    return database
