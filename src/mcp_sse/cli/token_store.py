"""Logins the command line keeps: one file per server URL under the user's config directory.

Each file holds what the official SDK's OAuth client stores (its ``TokenStorage`` protocol): the
tokens and the client registration, plus when the tokens were saved, so an access token that has
expired since is known to have (the SDK only knows the expiry of tokens it received itself). Files
are created mode 0600 in a 0700 directory and replaced atomically, so a reader never sees half a
file and nobody else on the machine reads a token.

Two processes for one server (a host often starts several ``mcp-sse connect``) share one login
through ``LoginLock``: the first holds it while it logs in, the others wait and then find its tokens.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import orjson
from mcp.client.auth import TokenStorage
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

__all__ = ["FileTokenStorage", "Login", "LoginLock", "auth_dir", "forget", "list_logins", "store_path"]

EXPIRY_MARGIN = 30.0
"""Seconds before its expiry that a stored access token is no longer offered: refreshed instead."""


def auth_dir() -> Path:
    """``$XDG_CONFIG_HOME/mcp-sse/auth`` (``~/.config/mcp-sse/auth`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mcp-sse" / "auth"


def store_path(server_url: str) -> Path:
    """The file of one server URL's login (named by a hash: URLs make poor file names)."""
    digest = hashlib.sha256(server_url.encode()).hexdigest()[:32]
    return auth_dir() / f"{digest}.json"


class FileTokenStorage(TokenStorage):
    """The SDK's ``TokenStorage`` over one server URL's file."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.path = store_path(server_url)
        self.discovered: Callable[[], dict[str, Any]] | None = None  # what to keep beside new tokens

    def _read(self) -> dict[str, Any]:
        try:
            document = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        return document if isinstance(document, dict) and document.get("server_url") == self.server_url else {}

    def _write(self, **changes: Any) -> None:
        document = {**self._read(), "server_url": self.server_url, **changes}
        write_private(self.path, orjson.dumps(document, option=orjson.OPT_INDENT_2))

    async def get_tokens(self) -> OAuthToken | None:
        document = self._read()
        raw = document.get("tokens")
        if not isinstance(raw, dict):
            return None
        tokens = OAuthToken.model_validate(raw)
        saved_at = float(document.get("tokens_saved_at", 0))
        if tokens.expires_in is not None:
            left = saved_at + tokens.expires_in - time.time()
            if left < EXPIRY_MARGIN:
                # Expired, or about to: only the refresh token is offered, so the SDK refreshes
                # before its first request instead of sending a token the server will refuse (the
                # SDK would then start a whole new login in the browser).
                return tokens.model_copy(update={"access_token": "", "expires_in": 0})
            tokens = tokens.model_copy(update={"expires_in": int(left)})
        return tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        extra = {"discovery": self.discovered()} if self.discovered is not None else {}
        self._write(tokens=tokens.model_dump(mode="json", exclude_none=True), tokens_saved_at=time.time(), **extra)

    def discovery(self) -> dict[str, Any]:
        """What was discovered about the authorization server when the tokens were saved (where
        its token endpoint is): a later process needs it to refresh them."""
        found = self._read().get("discovery")
        return found if isinstance(found, dict) else {}

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        raw = self._read().get("client_info")
        return OAuthClientInformationFull.model_validate(raw) if isinstance(raw, dict) else None

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self._write(client_info=client_info.model_dump(mode="json", exclude_none=True))


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by its owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mkstemp creates it 0600
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@dataclass(frozen=True)
class Login:
    server_url: str
    path: Path
    scope: str | None
    expires_at: float | None  # of the access token; None: not said
    refreshable: bool
    client_id: str | None


def list_logins() -> list[Login]:
    logins = []
    for path in sorted(auth_dir().glob("*.json")):
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        tokens = document.get("tokens") or {}
        expires_in = tokens.get("expires_in")
        saved_at = document.get("tokens_saved_at")
        logins.append(
            Login(
                server_url=str(document.get("server_url")),
                path=path,
                scope=tokens.get("scope"),
                expires_at=float(saved_at) + float(expires_in) if expires_in is not None and saved_at else None,
                refreshable=bool(tokens.get("refresh_token")),
                client_id=(document.get("client_info") or {}).get("client_id"),
            )
        )
    return logins


def forget(server_url: str) -> bool:
    """Delete the login of ``server_url``; False when there was none."""
    path = store_path(server_url)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    with contextlib.suppress(FileNotFoundError):
        path.with_suffix(".lock").unlink()
    return True


class LoginLock:
    """An exclusive lock per server URL across processes (``flock`` on a file beside the login):
    the process that holds it may open a browser; the others wait for its tokens."""

    def __init__(self, server_url: str) -> None:
        self.path = store_path(server_url).with_suffix(".lock")
        self._fd: int | None = None

    async def acquire(self, patience: float) -> bool:
        """Hold the lock; False when another process held it for ``patience`` seconds (its user
        never finished logging in): go on without it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                await anyio.sleep(0.1)  # flock cannot be waited on with a timeout; a poll of 10/s is cheap
                continue
            self._fd = fd
            return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
