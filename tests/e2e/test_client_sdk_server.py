"""Our client against the official SDK's own server, on both of its HTTP transports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp import ClientSession

from mcp_sse.client import connect
from tests.exercise import Recorder, exercise
from tests.servers import build_test_server, run_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def sdk_streamable_url() -> Iterator[str]:
    with run_server(build_test_server().streamable_http_app()) as url:
        yield url + "/mcp"


@pytest.fixture(scope="module")
def sdk_sse_url() -> Iterator[str]:
    with run_server(build_test_server().sse_app()) as url:
        yield url + "/sse"


@pytest.mark.parametrize("transport", ["auto", "streamable-http"])
async def test_streamable_http(sdk_streamable_url: str, transport: str) -> None:
    recorder = Recorder()
    async with connect(sdk_streamable_url, transport=transport) as (read, write):  # type: ignore[arg-type]
        async with ClientSession(read, write, logging_callback=recorder.on_log) as session:
            await exercise(session, recorder)


@pytest.mark.parametrize("transport", ["auto", "sse"])
async def test_sse(sdk_sse_url: str, transport: str) -> None:
    recorder = Recorder()
    async with connect(sdk_sse_url, transport=transport) as (read, write):  # type: ignore[arg-type]
        async with ClientSession(read, write, logging_callback=recorder.on_log) as session:
            await exercise(session, recorder)
