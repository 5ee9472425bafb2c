"""Opening and reading HTTP responses on the client, never waiting longer than the policy allows.

Every exchange's headers must arrive within ``response_timeout`` (``open_response``), and every
place the client reads a server's answer goes through here: a stream of events (a request's
POST, a resume, the standalone GET, the HTTP+SSE session stream, the re-initialize after a lost
session) and a whole body. Idle detection is ours, not the HTTP library's (whose read timeout is
off, because a stream may legitimately be silent between keepalives): a server that sends its
headers and then nothing, not even a keepalive comment, breaks the stream within ``idle_timeout``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx2

from mcp_sse.client.inflight import StreamBroken
from mcp_sse.wire.sse import ServerSentEvent, SSEDecoder

__all__ = ["SSEReader", "open_response", "read_body"]


@asynccontextmanager
async def open_response(
    http: httpx2.AsyncClient,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None = None,
    *,
    response_timeout: float,
) -> AsyncIterator[httpx2.Response]:
    """A streamed exchange whose headers must arrive within ``response_timeout``; StreamBroken
    otherwise, with ``maybe_received=False`` when the server cannot have seen the request."""
    request = http.build_request(method, url, headers=headers, content=body)
    try:
        with anyio.fail_after(response_timeout):
            response = await http.send(request, stream=True)
    except TimeoutError:
        raise StreamBroken(f"no answer within {response_timeout:g}s") from None
    except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
        raise StreamBroken(f"cannot connect: {exc!r}", maybe_received=False) from None
    except httpx2.TransportError as exc:
        raise StreamBroken(f"the connection broke: {exc!r}") from None
    try:
        yield response
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


def idle_message(idle_timeout: float) -> str:
    return f"no data from the server for {idle_timeout:g}s (idle timeout; not even a keepalive)"


class SSEReader:
    """The events of one response, a received chunk at a time."""

    __slots__ = ("_chunks", "decoder", "idle_timeout")

    def __init__(self, response: httpx2.Response, idle_timeout: float) -> None:
        self.decoder = SSEDecoder()
        self.idle_timeout = idle_timeout
        self._chunks = response.aiter_raw()

    async def next_events(self) -> list[ServerSentEvent] | None:
        """The events the next chunk completes (often none, often several); None when the body ended.

        StreamBroken when nothing arrives within the idle timeout or the connection fails.
        """
        try:
            with anyio.fail_after(self.idle_timeout):
                chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise StreamBroken(idle_message(self.idle_timeout)) from None
        except httpx2.TransportError as exc:
            raise StreamBroken(f"the connection broke: {exc!r}") from None
        return self.decoder.feed(chunk)

    @property
    def retry_ms(self) -> int | None:
        """The latest ``retry`` field the server sent on this stream."""
        return self.decoder.retry


async def read_body(response: httpx2.Response, idle_timeout: float) -> bytes:
    """A whole response body; StreamBroken if it stalls for the idle timeout or the connection fails."""
    try:
        with anyio.fail_after(idle_timeout):
            return await response.aread()
    except TimeoutError:
        raise StreamBroken("the response body stalled: " + idle_message(idle_timeout)) from None
    except httpx2.TransportError as exc:
        raise StreamBroken(f"the connection broke: {exc!r}") from None
