"""A lean HTTP/1.1 client for the benchmarks: one kept-alive connection, requests written as one
buffer, responses parsed by httptools (C). It costs the client a few tens of microseconds a call,
so the client process is not what the rpc benchmark measures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools


class _Response:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.complete = False
        self.headers_done = False

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class RawConnection:
    """``await RawConnection.open(url)``, then ``await conn.post(headers, body)`` as often as wanted."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host
        self.path = path

    @classmethod
    async def open(cls, url: str) -> RawConnection:
        parts = urlsplit(url)
        assert parts.hostname and parts.port
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, f"{parts.hostname}:{parts.port}", parts.path or "/")

    async def request(
        self, method: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {self.path} HTTP/1.1", f"host: {self.host}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        status, response = await self._read(until_complete=True)
        return status, response.headers, b"".join(response.chunks)

    async def _read(self, *, until_complete: bool) -> tuple[int, _Response]:
        """Feed the parser until the response is complete, or only its headers are in."""
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        while not (response.complete if until_complete else response.headers_done):
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(data)
        return parser.get_status_code(), response

    async def open_stream(self, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        """GET a stream and return once its headers are in; the body is left unread (held open)."""
        lines = [f"GET {self.path} HTTP/1.1", f"host: {self.host}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status, response = await self._read(until_complete=False)
        return status, response.headers

    async def stream(self, method: str, headers: dict[str, str], body: bytes = b"") -> AsyncIterator[bytes]:
        """Send a request and yield its body as it arrives (httptools undoes the chunked framing)."""
        lines = [f"{method} {self.path} HTTP/1.1", f"host: {self.host}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        while not response.complete:
            data = await self.reader.read(1 << 18)
            if not data:
                raise ConnectionError("the server closed the connection")
            parser.feed_data(data)
            if response.chunks:
                yield b"".join(response.chunks)
                response.chunks.clear()

    async def post(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        return await self.request("POST", headers, body)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class EventScanner:
    """Cuts a streamed body into whole SSE events with bytes operations only: the benchmarks count
    and check events, they need not decode them, so the client costs little per event."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, chunk: bytes) -> bytes:
        """The complete events the chunk finishes (possibly none), as one bytes object."""
        data = self.rest + chunk
        # An event ends at a blank line: LF LF, or CR LF CR LF (the SDK's sse-starlette writes CRLF).
        lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
        end = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
        if not end:
            self.rest = data
            return b""
        self.rest = data[end:]
        return data[:end]
