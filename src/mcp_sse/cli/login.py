"""OAuth login for ``connect``, ``call`` and ``tools``: what mcp-remote does for stdio-only hosts.

The protocol is the official SDK's OAuth client (``OAuthClientProvider``: protected resource and
authorization server discovery, registration or a client ID metadata document, PKCE, refresh,
step-up on ``insufficient_scope``). This module gives it what a command line has:

- a browser: the authorization URL goes to Python's ``webbrowser`` (so ``BROWSER`` is honoured) and
  is printed on stderr for a machine without one;
- a loopback callback listener on ``127.0.0.1`` (``--callback-port``; by default the port of the
  stored registration if it is free, else any free one) that receives the code;
- the logins kept per server URL (``cli/token_store.py``), refreshed before the user is asked again;
- one login for several processes (``LoginLock``), and a clear line on stderr when a stored login
  no longer works and the browser is needed again (stderr is the host's log).

For machines, the client credentials grant (``--client-secret`` or ``--client-key`` with
``--grant client_credentials``) needs no browser at all.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import h11
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    ProtectedResourceMetadata,
)
from pydantic import AnyUrl

from mcp_sse.cli.token_store import FileTokenStorage, LoginLock
from mcp_sse.sdk_compat import with_extra_scopes

__all__ = ["LoginOptions", "LoopbackCallback", "auth_for", "oauth_for"]

CALLBACK_PATH = "/callback"
OPEN_BROWSER = "import sys, webbrowser; sys.exit(not webbrowser.open(sys.argv[1]))"
LOGIN_WAIT = 600.0
"""Seconds a login may take: the user is in a browser, perhaps with a password manager and 2FA."""
DONE_PAGE = b"""<!doctype html><meta charset="utf-8"><title>mcp-sse</title>
<p>Logged in. You can close this window and go back to your MCP client.</p>"""
FAILED_PAGE = b"""<!doctype html><meta charset="utf-8"><title>mcp-sse</title>
<p>The login did not succeed: %s. Go back to your MCP client for details.</p>"""


@dataclass(frozen=True)
class LoginOptions:
    """What the command line says about logging in (all optional)."""

    scope: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    client_metadata_url: str | None = None
    callback_port: int | None = None
    grant: Literal["authorization_code", "client_credentials"] = "authorization_code"
    client_key: Path | None = None  # private_key_jwt for the client credentials grant
    client_key_algorithm: str = "ES256"


def say(message: str) -> None:
    print(f"mcp-sse: {message}", file=sys.stderr, flush=True)


class LoopbackCallback:
    """Receives the authorization server's redirect on ``http://127.0.0.1:PORT/callback``, once."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.result: AuthorizationCodeResult | None = None
        self.error: str | None = None
        self._done = anyio.Event()
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    async def listen(self) -> None:
        """Listen before the browser is sent off: its redirect may come back at once. Each login
        waits for a redirect of its own (one process may have to log in twice: another server)."""
        self.result, self.error, self._done = None, None, anyio.Event()
        try:
            self._listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        except OSError as exc:
            raise RuntimeError(
                f"cannot listen for the login's redirect on 127.0.0.1:{self.port} ({exc}); "
                "choose another port with --callback-port"
            ) from None

    async def wait(self) -> AuthorizationCodeResult:
        """Serve until the redirect arrives; the code it carries."""
        if self._listener is None:
            await self.listen()
        listener, self._listener = self._listener, None
        assert listener is not None
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._answer)
            with anyio.fail_after(LOGIN_WAIT):
                await self._done.wait()
            tg.cancel_scope.cancel()
        if self.result is None:
            raise RuntimeError(f"the authorization server refused the login: {self.error}")
        return self.result

    async def _answer(self, stream: anyio.abc.SocketStream) -> None:
        """One HTTP/1.1 exchange (h11 reads it), then the connection closes."""
        async with stream:
            connection = h11.Connection(h11.SERVER)
            request: h11.Request | None = None
            with anyio.move_on_after(10):
                while request is None:
                    event = connection.next_event()
                    if event is h11.NEED_DATA:
                        try:
                            connection.receive_data(await stream.receive(65536))
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            return
                    elif isinstance(event, h11.Request):
                        request = event
                    else:
                        return
            if request is None:
                return
            status, page = self._judge(request.target.decode("latin-1"))
            headers = [("content-type", "text/html; charset=utf-8"), ("content-length", str(len(page)))]
            headers.append(("connection", "close"))
            data = connection.send(h11.Response(status_code=status, headers=headers))
            data += connection.send(h11.Data(data=page)) + connection.send(h11.EndOfMessage())
            await stream.send(data)

    def _judge(self, target: str) -> tuple[int, bytes]:
        parts = urlsplit(target)
        if parts.path != CALLBACK_PATH or self._done.is_set():
            return 404, b"not found"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if "code" in query:
            self.result = AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))
            self._done.set()
            return 200, DONE_PAGE
        if "error" in query:
            self.error = query["error"] + (f" ({query['error_description']})" if "error_description" in query else "")
            self._done.set()
            return 400, FAILED_PAGE % self.error.encode("utf-8", "replace")
        return 400, FAILED_PAGE % b"the redirect carried neither a code nor an error"


class BrowserLogin:
    """The SDK provider's two hooks: send the user to the authorization URL, wait for the code."""

    def __init__(self, server_url: str, callback: LoopbackCallback, storage: FileTokenStorage) -> None:
        self.server_url = server_url
        self.callback = callback
        self.storage = storage
        self.browser: anyio.abc.Process | None = None

    async def open(self, authorization_url: str) -> None:
        if await self.storage.get_tokens() is not None:
            say(
                f"the stored login for {self.server_url} no longer works (its refresh failed or the server "
                f"refused it); logging in again in the browser (or run: mcp-sse auth login {self.server_url})"
            )
        await self.callback.listen()
        say(f"log in to {self.server_url} in your browser; if none opens, visit:\n  {authorization_url}")
        # Python's webbrowser (so BROWSER is honoured), in a process of its own whose output goes to
        # stderr: a console browser must not write into stdout, which carries the protocol under
        # `connect`. Not waited for: some browsers' commands return only when the user is done.
        self.browser = await anyio.open_process(
            [sys.executable, "-c", OPEN_BROWSER, authorization_url],
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr.fileno(),
            stderr=None,
            start_new_session=True,
        )

    async def code(self) -> AuthorizationCodeResult:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_browser)
            result = await self.callback.wait()
            tg.cancel_scope.cancel()
        say("logged in")
        return result

    async def _watch_browser(self) -> None:
        if self.browser is not None and await self.browser.wait() != 0:
            say("no browser could be started here: open the URL above yourself (on any machine that reaches this one)")


def callback_port(options: LoginOptions, stored: OAuthClientInformationFull | None) -> int:
    """``--callback-port``, else the port of the stored registration's redirect URI when it is free
    (a strict authorization server wants the very URI registered), else any free port (RFC 8252
    §7.3 has authorization servers accept any port of a loopback redirect URI; the registration and
    its tokens are kept either way: refreshing them needs no redirect at all)."""
    if options.callback_port is not None:
        return options.callback_port
    if stored is not None and stored.redirect_uris:
        port = urlsplit(str(stored.redirect_uris[0])).port
        if port and _free(port):
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free(port: int) -> bool:
    """Whether a listener could bind ``port`` now (as the callback listener binds: connections of an
    earlier login still in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def oauth_for(server_url: str, options: LoginOptions) -> httpx2.Auth:
    """The ``auth`` of our HTTP client for ``server_url``: logins kept and shared, as above."""
    storage = FileTokenStorage(server_url)
    provider: OAuthClientProvider
    if options.grant == "client_credentials":
        if options.client_id is None:
            raise ValueError("--grant client_credentials needs --client-id")
        if options.client_key is not None:
            assertion = SignedJWTParameters(
                issuer=options.client_id,
                subject=options.client_id,
                signing_algorithm=options.client_key_algorithm,
                signing_key=options.client_key.read_text(),
            )
            provider = PrivateKeyJWTOAuthProvider(
                server_url, storage, options.client_id, assertion.create_assertion_provider(), scope=options.scope
            )
        elif options.client_secret is not None:
            provider = ClientCredentialsOAuthProvider(
                server_url, storage, options.client_id, options.client_secret, scope=options.scope
            )
        else:
            raise ValueError("--grant client_credentials needs --client-secret or --client-key")
        return SharedLogin(provider, LoginLock(server_url))
    stored = await storage.get_client_info()
    port = callback_port(options, stored)
    callback = LoopbackCallback(port)
    if options.client_id is not None:
        registered = OAuthClientInformationFull(
            client_id=options.client_id,
            client_secret=options.client_secret,
            redirect_uris=[AnyUrl(callback.redirect_uri)],
            token_endpoint_auth_method="client_secret_basic" if options.client_secret else "none",
        )
        await storage.set_client_info(registered)
    metadata = OAuthClientMetadata(
        client_name="mcp-sse",
        redirect_uris=[AnyUrl(callback.redirect_uri)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    browser = BrowserLogin(server_url, callback, storage)
    provider_class = with_extra_scopes(OAuthClientProvider, options.scope)
    provider = provider_class(
        server_url,
        metadata,
        storage,
        redirect_handler=browser.open,
        callback_handler=browser.code,
        client_metadata_url=options.client_metadata_url,
    )
    remember_discovery(provider, storage)
    return SharedLogin(provider, LoginLock(server_url))


def remember_discovery(provider: OAuthClientProvider, storage: FileTokenStorage) -> None:
    """Keep what the SDK discovered (the authorization server's metadata: its token endpoint)
    beside the tokens, and give it back to the next process. The SDK keeps it in memory only, so
    a new process refreshing a stored token would post to a guessed ``/token`` on the MCP server
    and fail, and send the user to the browser again."""
    context = provider.context

    def discovered() -> dict[str, Any]:
        kept: dict[str, Any] = {"auth_server_url": context.auth_server_url}
        if context.oauth_metadata is not None:
            kept["oauth_metadata"] = context.oauth_metadata.model_dump(mode="json", exclude_none=True)
        if context.protected_resource_metadata is not None:
            kept["protected_resource_metadata"] = context.protected_resource_metadata.model_dump(
                mode="json", exclude_none=True
            )
        return kept

    storage.discovered = discovered
    found = storage.discovery()
    with contextlib.suppress(ValueError):  # a file from another version: discovered again when needed
        if "oauth_metadata" in found:
            context.oauth_metadata = OAuthMetadata.model_validate(found["oauth_metadata"])
        if "protected_resource_metadata" in found:
            context.protected_resource_metadata = ProtectedResourceMetadata.model_validate(
                found["protected_resource_metadata"]
            )
        context.auth_server_url = found.get("auth_server_url") or context.auth_server_url


async def auth_for(server_url: str, headers: dict[str, str], login: LoginOptions | None) -> httpx2.Auth | None:
    """OAuth for a command, unless it is switched off or the command sends its own Authorization."""
    if login is None or any(name.lower() == "authorization" for name in headers):
        return None
    return await oauth_for(server_url, login)


class SharedLogin(httpx2.Auth):
    """The SDK provider, with the login lock held around this process's first exchange: a second
    process started meanwhile waits, then finds the tokens the first one stored."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, provider: OAuthClientProvider, lock: LoginLock) -> None:
        self.provider = provider
        self.lock = lock
        self._first = True

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        locked = False
        if self._first:
            self._first = False
            locked = await self.lock.acquire(LOGIN_WAIT)
        flow = self.provider.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                response = yield outgoing
                try:
                    outgoing = await flow.asend(response)
                except StopAsyncIteration:
                    return
        finally:
            # Closed here, in this task, whatever ended the exchange (a failed connection included):
            # left to the garbage collector, the provider's flow would keep its lock held.
            await flow.aclose()
            if locked:
                self.lock.release()
