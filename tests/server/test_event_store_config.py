"""Choosing the event store from the config, and the app's lifespan running a store that needs it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcp_sse import ServerConfig, create_app
from mcp_sse.cli.main import main
from mcp_sse.core.memory_store import MemoryEventStore
from mcp_sse.core.redis_store import RedisEventStore
from mcp_sse.core.sqlite_store import SQLiteEventStore
from mcp_sse.server.app import event_store_from
from tests.servers import build_test_server

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "value", ["redis:localhost", "sqlite:", "sqlite::memory:", "SQLite:x.db", "memory:", "mongo://x"]
)
def test_an_unknown_event_store_is_refused_with_the_accepted_forms(value: str) -> None:
    with pytest.raises(ValueError, match=r"event_store must be 'memory', 'sqlite:PATH' \(PATH a file\) or 'redis://"):
        ServerConfig(event_store=value)


@pytest.mark.parametrize("value", ["redis://localhost:6379/0", "rediss://h/1", "unix:///run/redis.sock"])
def test_a_redis_url_names_the_redis_store(value: str) -> None:
    assert isinstance(event_store_from(ServerConfig(event_store=value)), RedisEventStore)


def test_max_age_must_be_positive() -> None:
    with pytest.raises(ValueError, match="event_store_max_age"):
        ServerConfig(event_store_max_age=0)
    assert ServerConfig(event_store_max_age=None).event_store_max_age is None


def test_the_default_is_the_memory_store() -> None:
    app = create_app(build_test_server(), ServerConfig(max_events_per_session=7))
    assert isinstance(app.store, MemoryEventStore)
    assert app.store.max_events == 7


def test_sqlite_config_builds_a_sqlite_store_with_the_configs_bounds(tmp_path: Path) -> None:
    config = ServerConfig(
        event_store=f"sqlite:{tmp_path / 'e.db'}",
        max_events_per_session=7,
        max_event_bytes_per_session=99,
        event_store_max_age=3600,
    )
    store = create_app(build_test_server(), config).store
    assert isinstance(store, SQLiteEventStore)
    assert (store.path, store.max_events, store.max_bytes, store.max_age) == (tmp_path / "e.db", 7, 99, 3600)


async def test_the_apps_lifespan_opens_and_closes_the_store(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    app = create_app(build_test_server(), ServerConfig(event_store=f"sqlite:{path}"))
    store = app.store
    with pytest.raises(RuntimeError, match="not running"):
        await store.append("s", 0, b"too early")
    async with app.run():
        assert await store.append("s", 0, b"kept") == 1
    with pytest.raises(RuntimeError, match="not running"):
        await store.append("s", 0, b"too late")
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT session, seq, payload FROM events").fetchall() == [("s", 1, b"kept")]


def test_the_cli_offers_and_validates_the_option() -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["serve", "--help"])
    assert "--event-store TEXT" in shown.output and "--event-store-max-age" in shown.output
    refused = runner.invoke(main, ["serve", "--event-store", "redis:x", "--app", "tests/servers.py:build_test_server"])
    assert refused.exit_code == 2
    assert "event_store must be 'memory', 'sqlite:PATH' (PATH a file) or 'redis://HOST:PORT/DB'" in refused.output
