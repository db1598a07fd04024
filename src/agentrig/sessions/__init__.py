"""Sessions: where a conversation lives between runs.

A :class:`Session` holds a conversation's items in order plus its :class:`SessionMeta`
(the agent that last answered and the tools' persistent state). Four backends share one
stored format, each item as ``json.dumps(item.to_json())`` and the metadata as its JSON:

- :class:`InMemorySession`: a Python list, for tests and one-shot runs;
- :class:`SQLiteSession`: a SQLite file (``sessions.db`` in the data directory by default);
- :class:`SQLAlchemySession`: the agentrig database, SQLite or PostgreSQL
  (``await SQLAlchemySession.open(session_id, url)``);
- :class:`RedisSession`: a Redis list and key, optionally expiring
  (needs ``pip install 'agentrig[redis]'``).
"""

from agentrig.sessions.base import Session, SessionMeta
from agentrig.sessions.memory import InMemorySession
from agentrig.sessions.redis import RedisSession
from agentrig.sessions.sql import SQLAlchemySession, SQLiteSession

__all__ = [
    "InMemorySession",
    "RedisSession",
    "SQLAlchemySession",
    "SQLiteSession",
    "Session",
    "SessionMeta",
]
