"""Persistence: SQLAlchemy models, Alembic migrations and repositories.

SQLite in the data directory by default, PostgreSQL when ``database_url`` is set; the
schema is migrated to the newest revision whenever a :class:`Database` is opened.
"""

from agentrig.store.db import Database
from agentrig.store.usage import SQLUsageLedger, UsageSummaryRow, usage_summary

__all__ = ["Database", "SQLUsageLedger", "UsageSummaryRow", "usage_summary"]
