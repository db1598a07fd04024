import pytest

from agentrig.config import load_settings
from agentrig.errors import ConfigError
from agentrig.store import Database


def test_a_bad_database_url_is_a_configuration_error():
    with pytest.raises(ConfigError, match="'nonsense' is not a database URL"):
        Database("nonsense")


async def test_opening_creates_the_data_directory_and_migrates(tmp_path):
    settings = load_settings(data_dir=tmp_path / "fresh" / "dir")
    database = await Database.open(settings)
    try:
        assert (tmp_path / "fresh" / "dir" / "agentrig.db").exists()
        assert await database.current_revision() == "0003"
        await database.upgrade()  # idempotent
        assert await database.current_revision() == "0003"
    finally:
        await database.aclose()


async def test_postgres_migrates_once_even_when_opened_concurrently(postgres_url):
    import asyncio

    databases = [Database(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(database.upgrade() for database in databases))
        assert {await database.current_revision() for database in databases} == {"0003"}
    finally:
        for database in databases:
            await database.aclose()
