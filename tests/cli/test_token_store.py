"""The logins the command line keeps: what the SDK's OAuth client is handed back, files only their
owner reads, one lock per server across processes. No server, no browser."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from mcp_sse.cli.token_store import FileTokenStorage, LoginLock, forget, list_logins, store_path

pytestmark = pytest.mark.anyio
URL = "https://mcp.example.com/mcp"


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path


async def test_tokens_and_registration_come_back_as_stored() -> None:
    storage = FileTokenStorage(URL)
    assert await storage.get_tokens() is None and await storage.get_client_info() is None
    client = OAuthClientInformationFull(client_id="c1", redirect_uris=[AnyUrl("http://127.0.0.1:5000/callback")])
    await storage.set_client_info(client)
    await storage.set_tokens(OAuthToken(access_token="a1", expires_in=3600, refresh_token="r1", scope="mcp"))
    tokens = await FileTokenStorage(URL).get_tokens()
    assert tokens is not None and (tokens.access_token, tokens.refresh_token, tokens.scope) == ("a1", "r1", "mcp")
    assert tokens.expires_in is not None and 3590 <= tokens.expires_in <= 3600, "what is left of its life"
    assert (await FileTokenStorage(URL).get_client_info()) == client
    assert await FileTokenStorage("https://other.example/mcp").get_tokens() is None, "one login per server URL"


async def test_an_expired_access_token_is_offered_as_a_refresh_token_only(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = FileTokenStorage(URL)
    await storage.set_tokens(OAuthToken(access_token="a1", expires_in=60, refresh_token="r1"))
    later = time.time() + 45  # inside the margin before expiry
    monkeypatch.setattr(time, "time", lambda: later)
    tokens = await storage.get_tokens()
    assert tokens is not None and tokens.access_token == "" and tokens.refresh_token == "r1", (
        "the SDK then refreshes first instead of sending a token the server refuses and opening a browser"
    )


async def test_files_are_the_owners_alone_and_forgotten_on_logout(config_home: Path) -> None:
    await FileTokenStorage(URL).set_tokens(OAuthToken(access_token="a1"))
    path = store_path(URL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [login.server_url for login in list_logins()] == [URL]
    assert not list(path.parent.glob(".tmp-*")), "no half-written file left behind"
    assert forget(URL) and not path.exists() and not forget(URL)
    assert list_logins() == []


async def test_one_login_lock_per_server() -> None:
    first, second, elsewhere = LoginLock(URL), LoginLock(URL), LoginLock("https://other.example/mcp")
    assert await first.acquire(1)
    assert not await second.acquire(0.3), "held by another holder (flock is per open file)"
    assert await elsewhere.acquire(0.3), "another server's login is not in the way"
    first.release()
    assert await second.acquire(1)
    second.release()
    elsewhere.release()
