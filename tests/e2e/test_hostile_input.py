"""The hostile-input suite: hundreds of malformed and hostile requests fired at a live server (its
own process, JWT access tokens) while a well-behaved official-SDK client streams 1,000 progress
notifications through it.

Every hostile request gets a 4xx with a JSON-RPC error body (or, where HTTP itself is broken, a 400
from the HTTP parser or a closed connection); the good client receives every notification exactly
once; and the server's memory after further rounds of the same attack is back at what it was after
the first one (measured from /proc, not assumed). docs/security.md's threat table points here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.crash import ServerProcess

pytestmark = pytest.mark.anyio

ISSUER = "https://as.test"
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
POST = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
VERSION = "2025-11-25"
MODERN = "2026-07-28"
GOOD_NOTIFICATIONS = 1000


def token(audience: str, subject: str, *, key: Any = KEY, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": subject, "aud": audience, "exp": now + 3600, "iat": now, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, "ES256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(audience: str, algorithm: str) -> str:
    """Tokens no library would make: ``alg: none``, and HS256 keyed with our public key (the
    algorithm-confusion attack on verifiers that let the token choose)."""
    now = int(time.time())
    claims = _b64(orjson.dumps({"iss": ISSUER, "sub": "alice", "aud": audience, "exp": now + 3600}))
    header = _b64(orjson.dumps({"alg": algorithm, "typ": "JWT"}))
    signing_input = f"{header}.{claims}".encode()
    if algorithm == "none":
        return f"{header}.{claims}."
    return f"{header}.{claims}.{_b64(hmac.new(PUBLIC_PEM, signing_input, hashlib.sha256).digest())}"


@dataclass
class Answer:
    name: str
    status: int | None  # None: the connection was closed without an answer
    body: bytes
    http_broken: bool = False  # the request is not valid HTTP: the parser's 400 or a close will do


Hostile = Callable[[], Awaitable[Answer]]


class Attack:
    """The hostile requests, each a coroutine that sends one and returns its answer."""

    def __init__(self, server: ServerProcess, alice: str, bob: str, alice_session: str, bob_session: str) -> None:
        self.url = server.url
        self.port = server.port
        self.alice, self.bob = alice, bob
        self.alice_session, self.bob_session = alice_session, bob_session
        self.http = httpx2.AsyncClient(timeout=30, limits=httpx2.Limits(max_connections=64))
        self.opened = [alice_session, bob_session]  # ended after the round: what is left is a leak

    async def end_sessions(self) -> None:
        for session_id in self.opened:
            bearer = self.alice if session_id == self.alice_session else self.bob
            headers = {"authorization": f"Bearer {bearer}", "mcp-session-id": session_id}
            assert (await self.http.delete(self.url, headers=headers)).status_code == 204

    def bob_headers(self, **extra: str) -> dict[str, str]:
        return {**POST, "authorization": f"Bearer {self.bob}", "mcp-session-id": self.bob_session,
                "mcp-protocol-version": VERSION, **extra}  # fmt: skip

    def request(self, name: str, method: str, headers: dict[str, str], body: bytes = b"", url: str = "") -> Hostile:
        async def send() -> Answer:
            try:
                response = await self.http.request(method, url or self.url, headers=headers, content=body)
            except (httpx2.LocalProtocolError, UnicodeEncodeError):
                # A header value httpx will not send (a tab, a space alone, non-latin-1): on the wire.
                status, answer = await raw_exchange(self.port, as_bytes(method, url or self.url, headers, body), None)
                return Answer(name, status, answer, http_broken=True)
            return Answer(name, response.status_code, response.content)

        return send

    def raw(self, name: str, data: bytes, *, http_broken: bool = False, trickle: bytes | None = None) -> Hostile:
        """Bytes straight onto a socket: what no HTTP client library would send."""

        async def send() -> Answer:
            status, body = await raw_exchange(self.port, data, trickle)
            return Answer(name, status, body, http_broken)

        return send

    def all(self) -> list[Hostile]:
        return [
            *self.broken_json(),
            *self.wrong_types(),
            *self.invalid_utf8(),
            *self.huge(),
            *self.bad_headers(),
            *self.forged_sessions(),
            *self.bad_tokens(),
            *self.oversize(),
            *self.slowloris(),
            *self.wrong_shapes(),
            *self.modern_era(),
        ]

    def broken_json(self) -> list[Hostile]:
        bodies = [b"", b"{", b"[", b"nul", b"\x00", b'{"a":', b"}{", b"[1,]", b"{'a':1}", b"NaN", b"1e999999",
                  b'{"jsonrpc":"2.0","id":1,"method":"ping"', b'{"jsonrpc":"2.0","id":1,"method":"ping"}}',
                  b"\xef\xbb\xbf{}", b'{"jsonrpc":"2.0",,"id":1}', b"[" * 3 + b"]" * 2, b'{"x":"\\u12"}',
                  b"\t\n ", b"true false", b'{"jsonrpc":"2.0","id":1,"method":"ping"}garbage']  # fmt: skip
        return [self.request(f"broken JSON {b[:20]!r}", "POST", self.bob_headers(), b) for b in bodies]

    def wrong_types(self) -> list[Hostile]:
        messages: list[Any] = [1, "ping", None, True, [], [1, 2], [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]]
        for bad_id in (True, False, {}, [], 1.5, None, {"a": 1}):
            messages.append({"jsonrpc": "2.0", "id": bad_id, "method": "ping"})
        for bad_method in (1, {}, [], True, 1.5):
            messages.append({"jsonrpc": "2.0", "id": 1, "method": bad_method})
        for bad_params in ("s", 1, True, 1.5):
            messages.append({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": bad_params})
        for bad_version in ("1.0", 2, None, "2.00", ""):
            messages.append({"jsonrpc": bad_version, "id": 1, "method": "ping"})
        messages += [{"jsonrpc": "2.0"}, {"jsonrpc": "2.0", "id": 1}, {"jsonrpc": "2.0", "error": "bad", "id": 1}]
        return [
            self.request(f"wrong types {str(m)[:40]}", "POST", self.bob_headers(), orjson.dumps(m)) for m in messages
        ]

    def invalid_utf8(self) -> list[Hostile]:
        prefix = b'{"jsonrpc":"2.0","id":1,"method":"'
        tails = [b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]
        bodies = [prefix + tail + b'"}' for tail in tails] + [b'{"\xff":1}', b'{"jsonrpc":"2.0","id":"\xfe"}']
        return [self.request(f"invalid UTF-8 {b[-8:]!r}", "POST", self.bob_headers(), b) for b in bodies]

    def huge(self) -> list[Hostile]:
        bodies = [
            orjson.dumps({"jsonrpc": "2.0", "id": "x" * 2000, "method": "ping"}),
            orjson.dumps({"jsonrpc": "2.0", "id": "x" * 60_000, "method": "ping"}),
            b'{"jsonrpc":"2.0","id":' + b"9" * 30 + b',"method":"ping"}',
            b'{"jsonrpc":"2.0","id":-' + b"9" * 30 + b',"method":"ping"}',
            b'{"jsonrpc":"2.0","id":1e400,"method":"ping"}',
            b'{"jsonrpc":"2.0","id":1,"method":"ping","params":' + b"[" * 2000 + b"]" * 2000 + b"}",
            b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + b'{"a":' * 5000 + b"1" + b"}" * 5001 + b"}",
            b"[" * 20_000 + b"]" * 20_000,
        ]
        return [self.request(f"huge {len(b)} bytes", "POST", self.bob_headers(), b) for b in bodies]

    def bad_headers(self) -> list[Hostile]:
        hostile: list[Hostile] = []
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        auth = f"Authorization: Bearer {self.bob}\r\n".encode()
        for name, line in [
            ("NUL in a value", b"X-Odd: a\x00b\r\n"),
            ("bare CR in a value", b"X-Odd: a\rb\r\n"),
            ("bare LF in a value", b"X-Odd: a\nb\r\n"),
            ("NUL in the session id", b"Mcp-Session-Id: " + self.bob_session.encode() + b"\x00x\r\n"),
            ("CR LF injected in the session id", b"Mcp-Session-Id: a\r\nX-Injected: 1\r\n\r\n"),
            ("space in a header name", b"X Odd: 1\r\n"),
            ("no colon", b"X-Odd\r\n"),
            ("obsolete line folding", b"X-Odd: a\r\n b\r\n"),
            ("NUL in the request target", b""),
        ]:
            target = b"/mcp\x00" if "target" in name else b"/mcp"
            data = (b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Accept: application/json, text/event-stream\r\n" + auth + line +
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)  # fmt: skip
            hostile.append(self.raw(name, data, http_broken=True))
        for value in ("../../etc/passwd", "*", "a" * 5000, "%00", "\u00e9t\u00e9", " ", "0" * 32, "x" * 31):
            headers = self.bob_headers()
            headers["mcp-session-id"] = value
            hostile.append(self.request(f"session id {value[:12]!r}", "POST", headers, body))
        cursors = ["1-\t1", "\xb2-1", "\uff11-1", "99999999999999999999-1", "1.1.1-1", "-1-1", "1--1"]
        cursors += ["0x10-1", "1-1e3", "9.0-1", "0-99999999999", "a" * 3000]
        for value in cursors:
            headers = self.bob_headers(accept="text/event-stream", **{"last-event-id": value})
            hostile.append(self.request(f"Last-Event-ID {value[:12]!r}", "GET", headers))
        for value in ("2025-\t11-25", "2025-13-45", "x" * 200, "2025-11-25, 2025-06-18"):
            headers = self.bob_headers(**{"mcp-protocol-version": value})
            hostile.append(self.request(f"version {value[:12]!r}", "POST", headers, body))
        return hostile

    def forged_sessions(self) -> list[Hostile]:
        hostile: list[Hostile] = []
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        for _ in range(12):
            headers = self.bob_headers(**{"mcp-session-id": secrets.token_urlsafe(24)})
            hostile.append(self.request("a made-up session id", "POST", headers, body))
            hostile.append(self.request("a made-up session id", "DELETE", headers))
        stolen = self.bob_headers(**{"mcp-session-id": self.alice_session})
        hostile += [
            self.request("another principal's session: POST", "POST", stolen, body),
            self.request("another principal's session: GET", "GET", {**stolen, "accept": "text/event-stream"}),
            self.request("another principal's session: DELETE", "DELETE", stolen),
            self.request(
                "another principal's events",
                "GET",
                {**stolen, "accept": "text/event-stream", "last-event-id": "1-1"},
            ),
        ]
        return hostile

    def bad_tokens(self) -> list[Hostile]:
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        now = int(time.time())
        tokens = [
            token(self.url, "alice", exp=now - 120),
            token(self.url, "alice", nbf=now + 600),
            token(self.url, "alice", key=OTHER_KEY),
            token("https://another.example/mcp", "alice"),
            token(self.url, "alice", iss="https://evil.test"),
            token(self.url, "alice", exp=None),
            forged(self.url, "none"),
            forged(self.url, "HS256"),
            self.alice[:-4] + "AAAA",
            "garbage",
            "a.b.c",
            "x" * 4000,
        ]
        hostile = [
            self.request("bad token", "POST", {**self.bob_headers(), "authorization": f"Bearer {t}"}, body)
            for t in tokens
        ]
        for value in ("", "Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", f"bearer{self.alice}", f"Token {self.alice}"):
            headers = {**self.bob_headers(), "authorization": value}
            hostile.append(self.request(f"authorization {value[:10]!r}", "POST", headers, body))
        anonymous = without(self.bob_headers(), "authorization")
        query = f"{self.url}?access_token={self.bob}"
        hostile.append(self.request("token in the query", "POST", anonymous, body, url=query))
        return hostile

    def oversize(self) -> list[Hostile]:
        ping = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        many = {f"x-h{i}": "v" * 8 for i in range(4000)}
        auth = f"Authorization: Bearer {self.bob}\r\n".encode()
        declared = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + auth +
                    b"Accept: application/json, text/event-stream\r\nContent-Length: 10000000\r\n"
                    b"Connection: close\r\n\r\n{")  # fmt: skip
        return [
            self.request("one 40 KB header", "POST", self.bob_headers(**{"x-padding": "a" * 40_000}), ping),
            self.request("4,000 headers", "POST", {**self.bob_headers(), **many}, ping),
            self.request("a 100 KB body", "POST", self.bob_headers(), b"[" + b" " * 100_000 + b"]"),
            self.raw("10 MB declared", declared),
        ]

    def slowloris(self) -> list[Hostile]:
        auth = f"Authorization: Bearer {self.bob}\r\nMcp-Session-Id: {self.bob_session}\r\n".encode()
        head = (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + auth +
                b"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n")  # fmt: skip
        stalled = head + b"Content-Length: 500\r\nConnection: close\r\n\r\n" + b'{"jsonrpc":"2.0",'
        chunked = head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\n" + b'{"jsonrpc":"2.0"'
        return [self.raw("slowloris", stalled, trickle=b" ") for _ in range(8)] + [
            self.raw("slowloris chunked", chunked) for _ in range(4)
        ]

    def wrong_shapes(self) -> list[Hostile]:
        ping = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
        base = self.url.rsplit("/mcp", 1)[0]
        bob = self.bob_headers()
        stream = self.bob_headers(accept="text/event-stream")
        return [
            self.request("PUT", "PUT", bob, ping),
            self.request("PATCH", "PATCH", bob, ping),
            self.request("text/plain", "POST", {**bob, "content-type": "text/plain"}, ping),
            self.request("no content type", "POST", without(bob, "content-type"), ping),
            self.request("accept json only", "POST", {**bob, "accept": "application/json"}, ping),
            self.request("GET accept json", "GET", {**bob, "accept": "application/json"}),
            self.request("no such path", "POST", bob, ping, url=base + "/nope"),
            self.request("messages without session", "POST", bob, ping, url=base + "/messages"),
            self.request("messages, unknown session", "POST", bob, ping, url=base + "/messages?session_id=z"),
            self.request("GET without session", "GET", without(stream, "mcp-session-id")),
        ]

    def modern_era(self) -> list[Hostile]:
        """The 2026-07-28 era's header rules, broken: its method and name headers that disagree with
        the body or are missing, a version that is not one, a body without its _meta."""
        meta = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "hostile", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "_meta": meta}}
        plain = {**POST, "authorization": f"Bearer {self.bob}", "mcp-protocol-version": MODERN}
        older = {**meta, "io.modelcontextprotocol/protocolVersion": VERSION}
        named = {"mcp-method": "tools/call", "mcp-name": "echo"}
        cases: list[tuple[str, dict[str, Any], dict[str, str]]] = [
            ("no Mcp-Method", call, {}),
            ("Mcp-Method disagrees", call, {"mcp-method": "tools/list", "mcp-name": "echo"}),
            ("no Mcp-Name", call, {"mcp-method": "tools/call"}),
            ("Mcp-Name disagrees", call, {"mcp-method": "tools/call", "mcp-name": "shout"}),
            ("Mcp-Name badly encoded", call, {"mcp-method": "tools/call", "mcp-name": "=?base64?!!!?="}),
            ("no _meta", {**call, "params": {"name": "echo"}}, {"mcp-method": "tools/call", "mcp-name": "echo"}),
            ("_meta version disagrees", {**call, "params": {"name": "echo", "_meta": older}}, named),
        ]  # fmt: skip
        hostile = [
            self.request(f"2026-07-28: {name}", "POST", {**plain, **extra}, orjson.dumps(message))
            for name, message, extra in cases
        ]
        for _ in range(8):
            made_up = self.bob_headers(accept="text/event-stream", **{"mcp-session-id": secrets.token_urlsafe(24)})
            hostile.append(self.request("GET on a made-up session", "GET", made_up))
            query = f"{self.url.rsplit('/mcp', 1)[0]}/messages?session_id={secrets.token_hex(16)}"
            ping = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
            hostile.append(
                self.request("HTTP+SSE message to a made-up session", "POST", self.bob_headers(), ping, url=query)
            )
        return hostile

    async def flood_of_get_streams(self, count: int) -> list[Answer]:
        """More GET streams at once (one per session: a second one on a session takes over the
        first) than a caller may hold: those past the limit get 429 while the first ones stay open;
        all are closed after."""
        answers: list[Answer] = []
        sessions = [await open_session(self.http, self.url, self.bob) for _ in range(count)]
        self.opened += sessions
        release, all_answered = anyio.Event(), anyio.Event()

        async def one(session_id: str) -> None:
            headers = self.bob_headers(accept="text/event-stream", **{"mcp-session-id": session_id})
            async with self.http.stream("GET", self.url, headers=headers) as response:
                held = response.status_code == 200
                body = b"" if held else await response.aread()
                answers.append(Answer("GET flood (held)" if held else "GET flood", response.status_code, body))
                if len(answers) == count:
                    all_answered.set()
                if held:
                    await release.wait()

        async with anyio.create_task_group() as tg:
            for session_id in sessions:
                tg.start_soon(one, session_id)
            with anyio.fail_after(20):
                await all_answered.wait()
            release.set()
        return answers


def as_bytes(method: str, url: str, headers: dict[str, str], body: bytes) -> bytes:
    target = "/" + url.split("/", 3)[3]
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body


async def raw_exchange(port: int, data: bytes, trickle: bytes | None) -> tuple[int | None, bytes]:
    """Send ``data`` (then ``trickle`` a byte at a time, slowly, never finishing), read until the
    server closes; the status and body it answered, if any."""
    received = b""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        with anyio.move_on_after(15):
            try:
                while True:
                    with anyio.move_on_after(0.3) as idle:
                        received += await stream.receive()
                    if idle.cancelled_caught and trickle is not None and not received:
                        await stream.send(trickle)
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                pass
    if not received.startswith(b"HTTP/1.1 "):
        return None, received
    head, _, body = received.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return int(received[9:12]), body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + rest[:size], rest[size + 2 :]
    return out


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


def judge(answer: Answer) -> str | None:
    """What is wrong with the answer to a hostile request, or None."""
    if answer.http_broken and (answer.status is None or answer.status == 400):
        return None
    if answer.status is None or not 400 <= answer.status < 500:
        return f"status {answer.status}"
    try:
        error = orjson.loads(answer.body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"status {answer.status} without a JSON-RPC error body: {answer.body[:120]!r}"
    if not (isinstance(error.get("code"), int) and isinstance(error.get("message"), str) and error["message"]):
        return f"a malformed JSON-RPC error: {error}"
    return None


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "key.pem").write_bytes(PUBLIC_PEM)
    process = ServerProcess("memory", folder)
    process.extra = [
        "--jwt-key", str(folder / "key.pem"), "--issuer", ISSUER, "--resource-url", process.url,
        "--max-body-bytes", "65536", "--body-timeout", "1", "--streams-per-caller", "8",
    ]  # fmt: skip
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def open_session(http: httpx2.AsyncClient, url: str, bearer: str) -> str:
    params = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    response = await http.post(url, json=init, headers={**POST, "authorization": f"Bearer {bearer}"})
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


async def one_round(server: ServerProcess) -> tuple[list[str], list[float], int]:
    """The whole attack beside a good client: what went wrong, the progress the good client saw,
    and how many hostile requests were sent."""
    alice, bob = token(server.url, "alice"), token(server.url, "bob")
    async with httpx2.AsyncClient(timeout=30) as http:
        alice_session = await open_session(http, server.url, alice)
        bob_session = await open_session(http, server.url, bob)
    attack = Attack(server, alice, bob, alice_session, bob_session)
    hostile = attack.all()
    answers: list[Answer] = []
    progress: list[float] = []
    started = anyio.Event()

    async def good_client() -> None:
        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)
            started.set()

        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {alice}"}, timeout=60) as http:
            async with streamable_http_client(server.url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    result = await session.call_tool(
                        "count", {"to": GOOD_NOTIFICATIONS, "delay_ms": 4}, progress_callback=on_progress
                    )
        assert result.content[0].text == f"counted to {GOOD_NOTIFICATIONS}"  # type: ignore[union-attr]

    async def run_attack() -> None:
        await started.wait()
        limit = anyio.Semaphore(24)

        async def fire(send: Hostile) -> None:
            async with limit:
                answers.append(await send())

        async with anyio.create_task_group() as tg:
            for send in hostile:
                tg.start_soon(fire, send)
            tg.start_soon(lambda: _extend(answers, attack.flood_of_get_streams(20)))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(good_client)
            tg.start_soon(run_attack)
    await attack.end_sessions()
    await attack.http.aclose()
    held = [a for a in answers if a.name == "GET flood (held)"]
    assert len(held) == 8, "a caller holds --streams-per-caller GET streams, no more"
    problems = [f"{a.name}: {problem}" for a in answers if a not in held and (problem := judge(a))]
    return problems, progress, len(answers) - len(held)


async def _extend(answers: list[Answer], more: Awaitable[list[Answer]]) -> None:
    answers.extend(await more)


async def test_hostile_requests_get_clear_answers_and_the_good_client_loses_nothing(server: ServerProcess) -> None:
    problems, progress, sent = await one_round(server)
    assert sent >= 200, f"only {sent} hostile requests"
    assert not problems, "\n".join(problems)
    assert progress == [float(n) for n in range(1, GOOD_NOTIFICATIONS + 1)], "every notification exactly once"
    assert "Traceback" not in server.log()


async def test_memory_returns_to_its_baseline_after_more_rounds(server: ServerProcess) -> None:
    """The first round (the test above) warmed the server up: caches, the allocator's arenas. Its
    resident memory then is the baseline; three more rounds must not leave it higher than the
    noise of a Python process (a leak of even 10 KiB a request would show as 7 MiB)."""
    assert server.process is not None
    await anyio.sleep(1.5)  # the sessions' last writes, the slowloris sockets' ends
    baseline = resident_kib(server.process.pid)
    for _ in range(3):
        problems, progress, _ = await one_round(server)
        assert not problems and len(progress) == GOOD_NOTIFICATIONS
    await anyio.sleep(1.5)
    after = resident_kib(server.process.pid)
    assert after - baseline < 4 * 1024, f"resident memory grew from {baseline} KiB to {after} KiB"
