"""Resumption over the durable store: a server with ``event_store="sqlite:..."`` on real uvicorn, a
POST's stream cut mid-call, the rest replayed with GET + Last-Event-ID, every event exactly once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import anyio
import httpx2
import orjson
import pytest

from mcp_sse import ServerConfig, create_app
from mcp_sse.core.sqlite_store import SQLiteEventStore
from tests.rawclient import call, initialize, iter_events, session_headers
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio

STEPS = 200
CUT_AFTER = 40


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def sqlite_url(db_path: Path) -> Iterator[str]:
    config = ServerConfig(keepalive_interval=1.0, retry_ms=50, event_store=f"sqlite:{db_path}")
    app = create_app(build_test_server(), config)
    assert isinstance(app.store, SQLiteEventStore)
    with run_server(app) as url:
        yield url + "/mcp"


def rows_of(path: Path, session_id: str, stream: int) -> int:
    with closing(sqlite3.connect(path)) as conn:
        query = "SELECT count(*) FROM events WHERE session = ? AND stream = ? AND payload IS NOT NULL"
        count: int = conn.execute(query, (session_id, stream)).fetchone()[0]
    return count


@pytest.mark.parametrize("resume", ["from-file", "live"])
async def test_cut_and_resume_over_sqlite_gets_every_event_once_in_order(
    sqlite_url: str, db_path: Path, resume: str
) -> None:
    """``from-file``: the call has finished and its events are committed before the resume, so the
    replay comes from the file (the store keeps 64 per stream in memory). ``live``: the resume
    joins while the call still runs, so the replay crosses from the file to memory to live events."""
    delay_ms = 2 if resume == "from-file" else 15
    async with httpx2.AsyncClient(timeout=30) as http:
        session_id = await initialize(http, sqlite_url)
        headers = session_headers(session_id)
        seen: list[float] = []
        ids: list[str] = []
        last_id = ""
        request = call(7, "count", {"to": STEPS, "delay_ms": delay_ms})
        async with http.stream("POST", sqlite_url, json=request, headers=headers) as r:
            assert r.status_code == 200
            async for event in iter_events(r):
                if event.id:
                    last_id = event.id
                if not event.data:
                    continue  # the priming event
                ids.append(event.id)
                message = orjson.loads(event.data)
                assert message.get("method") == "notifications/progress", "the answer must not come before the cut"
                seen.append(message["params"]["progress"])
                if len(seen) == CUT_AFTER:
                    break  # leaving the block drops the connection mid-stream
        stream = int(last_id.split("-")[0])
        # from-file: wait for the whole call to be committed; live: for well past the memory tail.
        wanted = STEPS + 1 if resume == "from-file" else 120
        for _ in range(1000):
            if await anyio.to_thread.run_sync(rows_of, db_path, session_id, stream) >= wanted:
                break
            await anyio.sleep(0.02)
        if resume == "live":
            assert await anyio.to_thread.run_sync(rows_of, db_path, session_id, stream) < STEPS + 1
        answers = []
        get_headers = {"accept": "text/event-stream", "mcp-session-id": session_id, "last-event-id": last_id}
        async with http.stream("GET", sqlite_url, headers=get_headers) as r:
            assert r.status_code == 200
            async for event in iter_events(r):
                if not event.data:
                    continue
                ids.append(event.id)
                message = orjson.loads(event.data)
                if message.get("id") == 7:
                    answers.append(message["result"]["content"][0]["text"])
                else:
                    seen.append(message["params"]["progress"])
            # the stream ends by itself once the response is delivered
        assert answers == [f"counted to {STEPS}"]
        assert seen == [float(i) for i in range(1, STEPS + 1)], "every progress event once, in order"
        assert ids == [f"{stream}-{seq}" for seq in range(1, STEPS + 2)], "ids consecutive, none repeated"
        for _ in range(1000):  # the last events reached the client from memory; the file follows
            if await anyio.to_thread.run_sync(rows_of, db_path, session_id, stream) == STEPS + 1:
                break
            await anyio.sleep(0.01)
        assert await anyio.to_thread.run_sync(rows_of, db_path, session_id, stream) == STEPS + 1
