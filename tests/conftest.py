from __future__ import annotations

from collections.abc import Iterator

import pytest

from mcp_sse import ServerConfig, create_app
from tests.redis_server import RedisServer, redis_server
from tests.servers import build_test_server, run_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Our server hosting the SDK test server, on real uvicorn over loopback."""
    with run_server(create_app(build_test_server(), ServerConfig(keepalive_interval=1.0, retry_ms=50))) as url:
        yield url


@pytest.fixture(scope="module")
def mcp_url(base_url: str) -> str:
    return base_url + "/mcp"


@pytest.fixture(scope="session")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server (Debian's package) for the whole run; tests keep apart by key prefix."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server
