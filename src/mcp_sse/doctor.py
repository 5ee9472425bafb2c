"""``mcp-sse doctor URL``: probe an MCP deployment for the classic failures and say how to fix them.

Each check is a small, independent probe over plain HTTP (the point is to see what the wire does,
so no MCP client library smooths anything over). A check ends OK, INFO (a fact), WARN (works, but
clients will suffer) or FAIL (broken); the command exits non-zero when anything failed.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
import orjson

from mcp_sse.addresses import is_loopback_address
from mcp_sse.wire import eras
from mcp_sse.wire.headers import ACCEPT_BOTH, LAST_EVENT_ID, MCP_METHOD, PROTOCOL_VERSION, SESSION_ID
from mcp_sse.wire.sse import ServerSentEvent, SSEDecoder

__all__ = ["Doctor", "Finding", "Report", "Status", "diagnose"]

Status = Literal["OK", "INFO", "WARN", "FAIL"]
POST_HEADERS = {"accept": ACCEPT_BOTH, "content-type": "application/json"}
VERSION = eras.V2025_11
"""The version the session-era checks speak: the one with priming events and resumable POST streams."""
MODERN = eras.MODERN_VERSIONS[0]


@dataclass
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass
class Report:
    url: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, status: Status, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(check, status, detail, fix))

    @property
    def failed(self) -> bool:
        return any(f.status == "FAIL" for f in self.findings)


def _initialize(request_id: Any = 0) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-sse-doctor", "version": "1"},
        },
    }


class Doctor:
    def __init__(self, url: str, http: httpx2.AsyncClient, *, stream_wait: float, idle_seconds: float) -> None:
        self.url = url
        self.http = http
        self.stream_wait = stream_wait
        self.idle_seconds = idle_seconds
        self.report = Report(url)
        self.session_id: str | None = None
        self.locked_out = False  # the server needs a token and we were given none
        self.needs_token = False

    async def run(self) -> Report:
        await self._guarded(self.check_auth)
        if self.locked_out:
            return self.report
        if await self.check_streamable():
            checks = [self.check_redirect, self.check_priming_and_resume, self.check_get_stream, self.check_nodes]
            checks += [self.check_origin, self.check_host, self.check_cors]
            if self.idle_seconds:
                checks.append(self.check_idle)
            for check in [*checks, self.close_session]:
                await self._guarded(check)
        await self._guarded(self.check_legacy_sse)
        await self._guarded(self.check_modern)
        return self.report

    async def _guarded(self, check: Callable[[], Awaitable[None]]) -> None:
        """A check that fails on the network becomes a finding, never a traceback."""
        name = check.__name__.removeprefix("check_").replace("_", "-")
        try:
            await check()
        except (httpx2.TransportError, TimeoutError) as exc:
            self.report.add(name, "WARN", f"the probe failed on the network: {exc!r}", "check proxies and timeouts")

    def _session_headers(self, **extra: str) -> dict[str, str]:
        headers = {**POST_HEADERS, PROTOCOL_VERSION: VERSION, **extra}
        if self.session_id:
            headers[SESSION_ID] = self.session_id
        return headers

    @asynccontextmanager
    async def _stream(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[httpx2.Response]:
        async with self.http.stream(method, url, **kwargs) as response:
            yield response

    async def _first_events(
        self, response: httpx2.Response, count: int, wait: float
    ) -> list[tuple[float, ServerSentEvent]]:
        """Up to ``count`` events (with their arrival time) within ``wait`` seconds."""
        decoder = SSEDecoder()
        got: list[tuple[float, ServerSentEvent]] = []
        with anyio.move_on_after(wait):
            async for chunk in response.aiter_bytes():  # decoded: a compressing proxy is reported, not fatal
                for event in decoder.feed(chunk):
                    got.append((time.monotonic(), event))
                    if len(got) >= count:
                        return got
        return got

    # --- the checks --------------------------------------------------------------------------

    async def check_auth(self) -> None:
        """What a client without a token is told (RFC 6750 §3, RFC 9728 §5.1), whether the protected
        resource metadata is there and names this very URL, and whether browsers may send a token."""
        given = any(name.lower() == "authorization" for name in self.http.headers)
        anonymous = {**POST_HEADERS, "authorization": ""} if given else POST_HEADERS
        response = await self.http.post(self.url, content=orjson.dumps(_initialize(5)), headers=anonymous)
        if response.status_code != 401:
            if sid := response.headers.get(SESSION_ID):
                await self.http.delete(self.url, headers={SESSION_ID: sid, "authorization": ""})
            if response.status_code < 400:
                local = is_loopback_address(urlsplit(self.url).hostname)
                self.report.add(
                    "auth",
                    "INFO" if local else "WARN",
                    "no token is needed: anyone who reaches the server can use it",
                    "" if local else "check tokens (--token-file, --jwks-url) on a server others can reach",
                )
            return
        self.needs_token = True
        challenge = response.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer"):
            self.report.add(
                "auth",
                "FAIL",
                f"401 without a Bearer challenge (WWW-Authenticate: {challenge or 'absent'!s})",
                "answer 401 with WWW-Authenticate: Bearer (RFC 6750 §3)",
            )
        else:
            await self._check_metadata(_auth_params(challenge))
        await self._check_cors_for_tokens()
        if not given:
            self.locked_out = True
            self.report.add("auth", "INFO", "the server needs a token: the other checks need one too", "pass --bearer")

    async def _check_metadata(self, params: dict[str, str]) -> None:
        metadata_url = params.get("resource_metadata")
        if metadata_url is None:
            self.report.add(
                "auth",
                "WARN",
                "401 says Bearer but not where to get a token (no resource_metadata): OAuth clients are stuck; "
                "fine for static tokens only",
                "publish protected resource metadata (--authorization-server) and name it in the challenge",
            )
            return
        try:
            response = await self.http.get(metadata_url, headers={"authorization": ""}, timeout=5)
        except httpx2.TransportError as exc:
            self.report.add(
                "auth-metadata",
                "FAIL",
                f"the challenge names metadata at {metadata_url}, which cannot be reached ({exc!r})",
                "set --resource-url to the exact URL clients use (behind a proxy: --trusted-proxy)",
            )
            return
        try:
            document = response.json() if response.status_code == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            self.report.add(
                "auth-metadata",
                "FAIL",
                f"the challenge names {metadata_url}, which answered {response.status_code} without a JSON document",
                "serve RFC 9728 metadata there without a token",
            )
            return
        resource = str(document.get("resource", ""))
        servers = document.get("authorization_servers") or []
        if resource.rstrip("/") != self.url.rstrip("/"):
            self.report.add(
                "auth-metadata",
                "FAIL",
                f"the metadata's resource {resource!r} is not the URL used ({self.url}): clients refuse it",
                "set --resource-url to the exact URL clients use (behind a proxy: --trusted-proxy)",
            )
        elif not servers:
            self.report.add(
                "auth-metadata", "FAIL", "the metadata names no authorization_servers", "--authorization-server"
            )
        else:
            scope = params.get("scope")
            said = f", scope {scope!r}" if scope else ""
            self.report.add(
                "auth-metadata", "OK", f"401 names the metadata{said}; its resource is this URL; issuer {servers[0]}"
            )
            await self._check_issuer(str(servers[0]))

    async def _check_issuer(self, issuer: str) -> None:
        """RFC 8414 §3 (path inserted after the well-known prefix), then OpenID discovery."""
        parts = urlsplit(issuer)
        path = parts.path.rstrip("/")
        candidates = [
            urlunsplit(parts._replace(path=f"/.well-known/oauth-authorization-server{path}")),
            urlunsplit(parts._replace(path=f"/.well-known/openid-configuration{path}")),
            issuer.rstrip("/") + "/.well-known/openid-configuration",
        ]
        for candidate in candidates:
            try:
                response = await self.http.get(candidate, headers={"authorization": ""}, timeout=5)
            except httpx2.TransportError:
                continue
            if response.status_code == 200:
                try:
                    named = response.json().get("issuer")
                except (ValueError, AttributeError):
                    named = None
                if named != issuer:
                    self.report.add(
                        "auth-server",
                        "FAIL",
                        f"the authorization server at {candidate} calls itself {named!r}, but the metadata names "
                        f"{issuer!r}: clients refuse the difference (RFC 8414 §3.3), even a trailing slash",
                        "name the issuer in --authorization-server exactly as its metadata spells it",
                    )
                    return
                self.report.add("auth-server", "OK", f"the authorization server's metadata is at {candidate}")
                return
        self.report.add(
            "auth-server",
            "WARN",
            f"no authorization server metadata found for {issuer} (RFC 8414 or OpenID discovery)",
            "check --authorization-server names the issuer clients log in with",
        )

    async def _preflight(self, requested: str) -> tuple[str, str]:
        """A same-origin POST preflight asking for ``requested`` headers: the origin it named and
        the headers the answer allows (lower-case, empty without CORS)."""
        parts = urlsplit(self.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        preflight = await self.http.options(
            self.url,
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": requested,
            },
        )
        return origin, preflight.headers.get("access-control-allow-headers", "").lower()

    async def _check_cors_for_tokens(self) -> None:
        origin, allowed = await self._preflight("authorization, content-type")
        if not allowed:
            return  # no CORS at all: the cors check says so
        refused = await self.http.post(
            self.url,
            content=orjson.dumps(_initialize(6)),
            headers={**POST_HEADERS, "origin": origin, "authorization": ""},
        )
        exposed = refused.headers.get("access-control-expose-headers", "").lower()
        if "authorization" not in allowed and "*" not in allowed:
            self.report.add(
                "cors-auth", "WARN", "preflight does not allow Authorization: browsers cannot send a token", "allow it"
            )
        elif "www-authenticate" not in exposed:
            self.report.add(
                "cors-auth",
                "WARN",
                "WWW-Authenticate is not exposed: a browser client cannot read the challenge",
                "add WWW-Authenticate to Access-Control-Expose-Headers",
            )
        else:
            self.report.add("cors-auth", "OK", "browsers may send Authorization and read WWW-Authenticate")

    async def check_streamable(self) -> bool:
        try:
            async with self._stream("POST", self.url, content=orjson.dumps(_initialize()), headers=POST_HEADERS) as r:
                status = r.status_code
                if status >= 400:
                    self.report.add(
                        "streamable-http", "INFO", f"POST initialize answered {status}: no Streamable HTTP here"
                    )
                    return False
                self.session_id = r.headers.get(SESSION_ID)
                kind = r.headers.get("content-type", "")
                if kind.startswith("text/event-stream"):
                    events = await self._first_events(r, 3, self.stream_wait)
                    reply = next((orjson.loads(e.data) for _, e in events if e.data), None)
                else:
                    reply = orjson.loads(await r.aread())
        except httpx2.TransportError as exc:
            self.report.add("reachable", "FAIL", f"cannot reach {self.url}: {exc!r}", "check the URL, DNS and firewall")
            return False
        if not isinstance(reply, dict) or "result" not in reply:
            self.report.add("streamable-http", "FAIL", f"initialize did not succeed: {reply!r}")
            return False
        version = reply["result"].get("protocolVersion")
        sessions = f"session id {'issued' if self.session_id else 'not issued (stateless)'}"
        self.report.add("streamable-http", "OK", f"serves Streamable HTTP, negotiated {version}, {sessions}")
        await self.http.post(
            self.url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=self._session_headers()
        )
        return True

    async def check_redirect(self) -> None:
        parts = urlsplit(self.url)
        other_path = parts.path[:-1] if parts.path.endswith("/") else parts.path + "/"
        other = urlunsplit(parts._replace(path=other_path))
        response = await self.http.post(other, content=orjson.dumps(_initialize(1)), headers=POST_HEADERS)
        if 300 <= response.status_code < 400:
            self.report.add(
                "redirects",
                "WARN",
                f"{other_path} answers {response.status_code} -> {response.headers.get('location')}",
                "serve both paths without a redirect: clients and proxies do not replay POST bodies across redirects",
            )
        else:
            self.report.add("redirects", "OK", f"{parts.path} and {other_path} are both answered without a redirect")
        if sid := response.headers.get(SESSION_ID):
            await self.http.delete(other, headers={SESSION_ID: sid})

    async def check_priming_and_resume(self) -> None:
        request = {"jsonrpc": "2.0", "id": "doctor-1", "method": "tools/list"}
        async with self._stream("POST", self.url, content=orjson.dumps(request), headers=self._session_headers()) as r:
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                self.report.add("priming", "INFO", "requests are answered with JSON: no stream to prime or resume")
                return
            if r.headers.get("content-encoding"):
                self._compression(r.headers["content-encoding"])
            events = await self._first_events(r, 2, self.stream_wait)
        if not events:
            self.report.add("priming", "WARN", "the POST stream delivered nothing", "check for a buffering proxy")
            return
        first = events[0][1]
        if first.data or not first.id:
            self.report.add(
                "priming",
                "WARN",
                "no priming event (id, empty data) at the start of the POST stream",
                f"{VERSION} servers should prime every POST stream so a dropped connection can resume (SEP-1699)",
            )
        else:
            self.report.add("priming", "OK", f"POST streams start with a priming event (id {first.id!r})")
        event_id = first.id or next((e.id for _, e in events if e.id), "")
        if not event_id:
            self.report.add(
                "resume",
                "WARN",
                "events carry no ids: a dropped stream cannot be resumed with Last-Event-ID",
                "give events ids from an event store (mcp-sse does this by default)",
            )
            return
        headers = {"accept": "text/event-stream", PROTOCOL_VERSION: VERSION, LAST_EVENT_ID: event_id}
        if self.session_id:
            headers[SESSION_ID] = self.session_id
        async with self._stream("GET", self.url, headers=headers) as r:
            replayed = await self._first_events(r, 3, self.stream_wait) if r.status_code == 200 else []
            status = r.status_code
        if any(e.data and orjson.loads(e.data).get("id") == "doctor-1" for _, e in replayed):
            self.report.add("resume", "OK", f"GET with Last-Event-ID {event_id!r} replayed the missed response")
        else:
            self.report.add(
                "resume", "WARN", f"GET with Last-Event-ID answered {status} without replaying the missed response"
            )

    async def check_get_stream(self) -> None:
        headers = {"accept": "text/event-stream", PROTOCOL_VERSION: VERSION}
        if self.session_id:
            headers[SESSION_ID] = self.session_id
        opened = time.monotonic()
        request = self.http.build_request("GET", self.url, headers=headers)
        try:
            with anyio.fail_after(self.stream_wait):
                first = await self.http.send(request, stream=True)
        except TimeoutError:
            self.report.add(
                "buffering",
                "FAIL",
                f"the GET event stream did not even send its headers in {self.stream_wait:g}s: a proxy is buffering it",
                "nginx: proxy_buffering off (or let X-Accel-Buffering: no through), no gzip for text/event-stream",
            )
            return
        try:
            await self._get_stream_opened(first, headers, opened)
        finally:
            await first.aclose()

    async def _get_stream_opened(self, first: httpx2.Response, headers: dict[str, str], opened: float) -> None:
        if first.status_code == 405:
            self.report.add("get-stream", "INFO", "no standalone GET stream (405)")
            return
        if first.status_code != 200:
            self.report.add("get-stream", "WARN", f"GET answered {first.status_code}")
            return
        if first.headers.get("content-encoding"):
            self._compression(first.headers["content-encoding"])
        arrived = await self._first_bytes(first, self.stream_wait)
        self._buffering(arrived, opened)
        async with self._stream("GET", self.url, headers=headers) as second:
            if second.status_code == 409:
                self.report.add(
                    "second-get",
                    "WARN",
                    "a second GET stream is refused with 409 Conflict",
                    "replace the old stream instead: when a proxy drops it silently, clients loop on 409",
                )
            elif second.status_code == 200:
                self.report.add("second-get", "OK", "a second GET stream takes over from the first (no 409)")
            else:
                self.report.add("second-get", "INFO", f"a second GET stream answered {second.status_code}")

    async def _first_bytes(self, response: httpx2.Response, wait: float) -> float | None:
        """When the first byte of the body arrived (an event or a keepalive comment), or None."""
        with anyio.move_on_after(wait):
            async for chunk in response.aiter_raw():  # raw: a decoder could hold bytes back, as a proxy would
                if chunk:
                    return time.monotonic()
        return None

    def _buffering(self, arrived: float | None, opened: float) -> None:
        if arrived is not None:
            delay = arrived - opened
            status: Status = "OK" if delay < 2.0 else "WARN"
            detail = f"the event stream delivered its first bytes after {delay:.2f}s"
            fix = (
                "" if status == "OK" else "send a priming event or a keepalive at once, so proxies and clients see life"
            )
            self.report.add("buffering", status, detail, fix)
            return
        self.report.add(
            "buffering",
            "FAIL",
            f"the GET event stream delivered nothing in {self.stream_wait:g}s: a proxy is buffering it "
            "(or the server sends neither a priming event nor keepalives)",
            "nginx: proxy_buffering off (or let X-Accel-Buffering: no through), no gzip for text/event-stream",
        )

    def _compression(self, encoding: str) -> None:
        self.report.add(
            "compression",
            "WARN",
            f"the event stream is compressed ({encoding})",
            "do not compress text/event-stream: compressors hold events until their buffer fills",
        )

    async def check_origin(self) -> None:
        headers = {**POST_HEADERS, "origin": "http://evil.example"}
        response = await self.http.post(self.url, content=orjson.dumps(_initialize(2)), headers=headers)
        if response.status_code == 403:
            self.report.add("origin", "OK", "a foreign Origin is refused with 403")
        elif response.status_code >= 400:
            self.report.add("origin", "OK", f"a foreign Origin is refused ({response.status_code})")
        else:
            local = is_loopback_address(urlsplit(self.url).hostname)
            self.report.add(
                "origin",
                "FAIL" if local else "WARN",
                f"a request with Origin: http://evil.example was accepted ({response.status_code})",
                f"validate Origin on every request and answer 403 (DNS rebinding; spec {VERSION})",
            )
            if sid := response.headers.get(SESSION_ID):
                await self.http.delete(self.url, headers={SESSION_ID: sid})

    async def check_host(self) -> None:
        if not is_loopback_address(urlsplit(self.url).hostname):
            return
        headers = {**POST_HEADERS, "host": "evil.example"}
        response = await self.http.post(self.url, content=orjson.dumps(_initialize(3)), headers=headers)
        if response.status_code >= 400:
            self.report.add("host", "OK", f"a foreign Host is refused ({response.status_code})")
        else:
            self.report.add(
                "host",
                "FAIL",
                "a local server answered Host: evil.example: it is open to DNS rebinding",
                "accept only localhost, 127.0.0.1 and [::1] as Host on a loopback address",
            )

    async def check_cors(self) -> None:
        origin, allowed = await self._preflight(f"content-type, {SESSION_ID}, {PROTOCOL_VERSION}, {LAST_EVENT_ID}")
        response = await self.http.post(
            self.url, content=orjson.dumps(_initialize(4)), headers={**POST_HEADERS, "origin": origin}
        )
        exposed = response.headers.get("access-control-expose-headers", "").lower()
        if sid := response.headers.get(SESSION_ID):
            await self.http.delete(self.url, headers={SESSION_ID: sid})
        if not allowed and not exposed:
            self.report.add("cors", "INFO", "no CORS headers: browser clients from other origins cannot connect")
            return
        missing = [h for h in (SESSION_ID, PROTOCOL_VERSION, LAST_EVENT_ID) if h not in allowed and "*" not in allowed]
        if SESSION_ID not in exposed:
            self.report.add(
                "cors",
                "WARN",
                "Mcp-Session-Id is not in Access-Control-Expose-Headers: browsers cannot read the session id",
                "expose Mcp-Session-Id",
            )
        elif missing:
            self.report.add("cors", "WARN", f"preflight does not allow {', '.join(missing)}", "allow the MCP headers")
        else:
            self.report.add("cors", "OK", "CORS exposes Mcp-Session-Id and allows the MCP request headers")

    async def check_idle(self) -> None:
        headers = {"accept": "text/event-stream", PROTOCOL_VERSION: VERSION}
        if self.session_id:
            headers[SESSION_ID] = self.session_id
        started = time.monotonic()
        ended_early = False
        async with self._stream("GET", self.url, headers=headers) as r:
            with anyio.move_on_after(self.idle_seconds):
                async for _ in r.aiter_raw():
                    pass
                ended_early = True
        held = time.monotonic() - started
        if ended_early:
            self.report.add(
                "idle",
                "WARN",
                f"an idle event stream was cut after {held:.0f}s",
                "raise the proxy's idle timeout (nginx proxy_read_timeout) or send keepalives more often",
            )
        else:
            self.report.add("idle", "OK", f"an idle event stream stayed open for {self.idle_seconds:g}s")

    async def check_nodes(self) -> None:
        """Whether every request of one session finds it, whichever process or node a load
        balancer picks: each probe on a new connection, as a client behind a proxy may arrive.
        Some answered and some "session not found" means several nodes without a shared store."""
        if self.session_id is None:
            return  # a server without sessions: any node can answer anything
        probes = 8
        ping = {"jsonrpc": "2.0", "id": "doctor-ping", "method": "ping"}
        statuses = []
        for _ in range(probes):
            response = await self.http.post(
                self.url, content=orjson.dumps(ping), headers=self._session_headers(connection="close")
            )
            statuses.append(response.status_code)
        lost = statuses.count(404)
        if lost and lost < probes:
            self.report.add(
                "nodes",
                "FAIL",
                f"{lost} of {probes} requests of one session were answered 'session not found': they reached "
                "processes or nodes that do not share sessions",
                "run every node (and worker) with --redis redis://HOST:PORT/DB, or make the balancer sticky "
                '(docs/deploy.md, "A cluster")',
            )
        elif lost:
            self.report.add("nodes", "WARN", "the session was lost between two requests", "check the server's logs")
        else:
            self.report.add("nodes", "OK", f"{probes} requests of one session, each on a new connection, all found it")

    async def close_session(self) -> None:
        if self.session_id:
            response = await self.http.delete(self.url, headers={SESSION_ID: self.session_id})
            if response.status_code not in (200, 202, 204, 405):
                self.report.add("delete", "WARN", f"DELETE of the session answered {response.status_code}")

    async def check_legacy_sse(self) -> None:
        parts = urlsplit(self.url)
        base_path = parts.path.rstrip("/").rsplit("/", 1)[0]
        sse_url = urlunsplit(parts._replace(path=f"{base_path}/sse"))
        try:
            async with self._stream("GET", sse_url, headers={"accept": "text/event-stream"}) as r:
                events = await self._first_events(r, 1, min(self.stream_wait, 5)) if r.status_code == 200 else []
        except httpx2.TransportError:
            events = []
        if events and events[0][1].event == "endpoint":
            self.report.add("http+sse", "INFO", f"serves {eras.LEGACY_SSE} HTTP+SSE at {sse_url}")
        else:
            self.report.add("http+sse", "INFO", f"no {eras.LEGACY_SSE} HTTP+SSE endpoint at {sse_url}")

    async def check_modern(self) -> None:
        request = {
            "jsonrpc": "2.0",
            "id": "doctor-discover",
            "method": "server/discover",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}},
        }
        headers = {**POST_HEADERS, PROTOCOL_VERSION: MODERN, MCP_METHOD: "server/discover"}
        response = await self.http.post(self.url, content=orjson.dumps(request), headers=headers)
        if response.status_code == 200:
            self.report.add(MODERN, "INFO", f"serves the stateless {MODERN} era")
        else:
            self.report.add(MODERN, "INFO", f"does not serve the stateless {MODERN} era ({response.status_code})")


_AUTH_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]+)')


def _auth_params(challenge: str) -> dict[str, str]:
    """The parameters of a ``Bearer`` challenge (RFC 9110 §11.2), quotes removed."""
    found = {}
    for name, value in _AUTH_PARAM.findall(challenge.partition(" ")[2]):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[name.lower()] = value
    return found


async def diagnose(
    url: str, *, headers: dict[str, str] | None = None, stream_wait: float = 20.0, idle_seconds: float = 0.0
) -> Report:
    timeout = httpx2.Timeout(10.0, read=max(30.0, stream_wait + 5))
    async with httpx2.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False) as http:
        return await Doctor(url, http, stream_wait=stream_wait, idle_seconds=idle_seconds).run()
