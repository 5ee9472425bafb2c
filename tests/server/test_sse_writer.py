"""The SSE writer driven directly through its ASGI callables: coalescing, completion, takeover."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import pytest

from mcp_sse.core.memory_store import MemoryEventStore
from mcp_sse.core.session import Outbound, Session, SessionKind, Stream
from mcp_sse.server.sse_writer import streamable_encoder, write_stream
from mcp_sse.wire.jsonrpc import Kind
from mcp_sse.wire.sse import SSEDecoder

pytestmark = pytest.mark.anyio


class Recorder:
    """The ASGI ``send`` and ``receive`` of a connection whose client never leaves."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._more = anyio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self._more.set()

    async def until(self, done: Callable[[], bool]) -> None:
        while not done():
            self._more = anyio.Event()
            await self._more.wait()

    async def receive(self) -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body" and m["body"]]


async def test_events_ready_together_go_out_in_one_send_and_the_stream_then_ends() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.open_request_stream([1])
    for i in range(50):
        await session.emit(Outbound(b'{"n":%d}' % i, Kind.NOTIFICATION, None, related_request_id=1))
    await session.emit(Outbound(b'{"id":1}', Kind.RESPONSE, 1))
    conn = Recorder()
    with anyio.fail_after(5):
        await write_stream(
            conn.send, conn.receive, session, stream, 0, headers=[], keepalive=10, encode=streamable_encoder
        )
    bodies = conn.bodies()
    assert len(bodies) == 1, "51 ready events should be one write"
    events = SSEDecoder().feed(bodies[0])
    assert [e.id for e in events] == [f"1-{i}" for i in range(1, 52)]
    assert conn.sent[-1]["more_body"] is False, "the last batch of a complete stream also ends the response"


async def test_a_newer_writer_ends_the_older_one() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.streams[0]
    old, new = Recorder(), Recorder()
    async with anyio.create_task_group() as tg:
        done = anyio.Event()

        async def run_old() -> None:
            await write_stream(
                old.send, old.receive, session, stream, 0, headers=[], keepalive=10, encode=streamable_encoder
            )
            done.set()

        tg.start_soon(run_old)
        await anyio.sleep(0.05)
        tg.start_soon(
            lambda: write_stream(
                new.send, new.receive, session, stream, 0, headers=[], keepalive=10, encode=streamable_encoder
            )
        )
        with anyio.fail_after(5):
            await done.wait()
        await session.emit(Outbound(b'{"late":1}', Kind.NOTIFICATION))
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert old.bodies() == []
    assert b'{"late":1}' in b"".join(new.bodies())


class Leaver(Recorder):
    """A connection whose client goes away after ``after`` seconds."""

    def __init__(self, after: float) -> None:
        super().__init__()
        self.after = after

    async def receive(self) -> dict[str, Any]:
        await anyio.sleep(self.after)
        return {"type": "http.disconnect"}


async def test_an_idle_stream_ends_when_its_client_leaves_and_frees_the_stream() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.streams[0]
    conn = Leaver(0.1)
    with anyio.fail_after(5):
        await write_stream(
            conn.send, conn.receive, session, stream, 0, headers=[], keepalive=30, encode=streamable_encoder
        )
    assert stream.writer is None, "the stream is free for the client's next connection"
    assert conn.sent[-1]["type"] == "http.response.start", "nothing is written to a connection that is gone"
    await session.emit(Outbound(b'{"kept":1}', Kind.NOTIFICATION))
    assert [e.payload for e in await session.read(stream, 0)] == [b'{"kept":1}'], "the log keeps it for a resume"


async def test_an_idle_stream_gets_a_keepalive_every_interval() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    conn = Recorder()
    with anyio.move_on_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: write_stream(
                    conn.send,
                    conn.receive,
                    session,
                    session.streams[0],
                    0,
                    headers=[],
                    keepalive=0.05,
                    encode=streamable_encoder,
                )
            )
            await conn.until(lambda: conn.bodies().count(b":ping\n\n") >= 3)
            await session.emit(Outbound(b'{"live":1}', Kind.NOTIFICATION))
            await conn.until(lambda: any(b'{"live":1}' in body for body in conn.bodies()))
            tg.cancel_scope.cancel()
    assert conn.bodies().count(b":ping\n\n") >= 3, "the keepalive timer re-arms after it fires"
    assert any(b'{"live":1}' in body for body in conn.bodies()), "an event still wakes the writer between pings"


def test_the_fast_encoder_writes_what_the_general_one_does() -> None:
    from mcp_sse.core.events import Event
    from mcp_sse.wire.sse import encode_json_event

    for event in (Event(0, 1, b"{}"), Event(12, 34567, b'{"jsonrpc":"2.0","method":"x","params":{"s":"a%sb"}}')):
        expected = encode_json_event(event.payload, f"{event.stream}-{event.seq}".encode(), b"message")
        assert streamable_encoder(event) == expected


def test_the_priming_event_is_what_the_general_encoder_writes() -> None:
    from mcp_sse.server.sse_writer import priming_event
    from mcp_sse.wire.sse import encode_event

    for stream, seq, retry in ((0, 0, 1000), (7, 123456, 5)):
        assert priming_event(stream, seq, retry) == encode_event("", id=f"{stream}-{seq}", retry=retry)


PRIMING = b"id: 1-0\ndata: \n\n"


async def serve(conn: Recorder, session: Session, stream: Stream, **options: Any) -> None:
    """``write_stream`` for one test connection, from the stream's start, keepalive 10 s."""
    await write_stream(
        conn.send, conn.receive, session, stream, 0, headers=[], keepalive=10, encode=streamable_encoder, **options
    )


async def test_an_answer_that_comes_at_once_goes_out_with_the_priming_event_in_one_write() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.open_request_stream([1])
    conn = Recorder()

    async def answer() -> None:
        await session.emit(Outbound(b'{"id":1}', Kind.RESPONSE, 1))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve, conn, session, stream, preamble=PRIMING))
            tg.start_soon(answer)
    assert [m["type"] for m in conn.sent] == ["http.response.start", "http.response.body"]
    assert conn.sent[1]["body"].startswith(PRIMING) and b'{"id":1}' in conn.sent[1]["body"]
    assert conn.sent[1]["more_body"] is False


async def test_a_slow_answer_gets_the_priming_event_first_and_the_end_after_it() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.open_request_stream([1])
    conn = Recorder()

    async def answer_later() -> None:
        await conn.until(lambda: len(conn.bodies()) == 1)  # the priming event went out on its own
        await session.emit(Outbound(b'{"id":1}', Kind.RESPONSE, 1))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve, conn, session, stream, preamble=PRIMING))
            tg.start_soon(answer_later)
    assert conn.bodies()[0] == PRIMING
    assert b'{"id":1}' in conn.bodies()[1] and conn.sent[-1]["more_body"] is False


async def test_the_headers_of_a_quick_answer_go_out_with_it_not_before_it() -> None:
    """Headers written before the answer wake the client twice (W2 in docs/benchmarks.md)."""
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.open_request_stream([1])
    conn = Recorder()
    answered = False
    headers_after_answer: list[bool] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers_after_answer.append(answered)
        await conn.send(message)

    async def answer_soon() -> None:
        nonlocal answered
        await anyio.sleep(0.002)  # within the grace moment, after the writer began waiting
        answered = True
        await session.emit(Outbound(b'{"id":1}', Kind.RESPONSE, 1))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                partial(
                    write_stream,
                    send,
                    conn.receive,
                    session,
                    stream,
                    0,
                    headers=[],
                    keepalive=10,
                    encode=streamable_encoder,
                    preamble=PRIMING,
                )
            )
            tg.start_soon(answer_soon)
    assert headers_after_answer == [True]
    assert [m["type"] for m in conn.sent] == ["http.response.start", "http.response.body"]


async def test_a_stream_with_nothing_to_send_still_gets_its_headers() -> None:
    """No priming event (an older protocol version) and no events: the client must not wait for
    its response headers until the upstream says something."""
    session = Session("s", SessionKind.STREAMABLE, "2025-03-26", MemoryEventStore())
    conn = Recorder()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve, conn, session, session.streams[0]))
            await conn.until(lambda: any(m["type"] == "http.response.start" for m in conn.sent))
            tg.cancel_scope.cancel()
    assert conn.bodies() == [], "headers alone: there was nothing to say"


class StuckClient(Recorder):
    """A client that stopped reading: every body write after the headers blocks for good."""

    async def send(self, message: dict[str, Any]) -> None:
        await super().send(message)
        if message["type"] == "http.response.body":
            await anyio.sleep_forever()


async def test_a_takeover_ends_a_writer_blocked_behind_a_client_that_stopped_reading() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.streams[0]
    await session.emit(Outbound(b'{"n":1}', Kind.NOTIFICATION))
    stuck, fresh = StuckClient(), Recorder()
    ended = anyio.Event()

    async def old_writer() -> None:
        await write_stream(
            stuck.send, stuck.receive, session, stream, 0, headers=[], keepalive=30, encode=streamable_encoder
        )
        ended.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(old_writer)
            await stuck.until(lambda: len(stuck.sent) == 2)  # blocked in its first body write
            tg.start_soon(
                lambda: write_stream(
                    fresh.send, fresh.receive, session, stream, 0, headers=[], keepalive=30, encode=streamable_encoder
                )
            )
            await ended.wait()  # the old writer returned normally: the takeover was not an error
            await fresh.until(lambda: any(b'{"n":1}' in body for body in fresh.bodies()))
            tg.cancel_scope.cancel()


async def test_a_cancellation_from_outside_is_not_swallowed_by_a_takeover_at_the_same_time() -> None:
    """The server cancelling a request's task (uvicorn at shutdown) while a takeover ends the same
    writer: the task must still end cancelled, not carry on as if only the takeover happened."""
    import asyncio

    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.streams[0]
    conn = Recorder()
    task = asyncio.ensure_future(
        write_stream(conn.send, conn.receive, session, stream, 0, headers=[], keepalive=30, encode=streamable_encoder)
    )
    with anyio.fail_after(5):
        await conn.until(lambda: len(conn.sent) >= 1)
        await asyncio.sleep(0.05)  # the writer now waits for events
        assert stream.writer is not None
        stream.writer.cancel()  # a takeover...
        task.cancel()  # ...and the server's own cancellation, in the same loop turn
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_server_side_close_during_the_wait_for_an_answer_still_sends_the_priming_event() -> None:
    """A 2025-11-25 client closed on before it saw an event id could not come back (SEP-1699)."""
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.open_request_stream([1])
    conn = Recorder()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve, conn, session, stream, preamble=PRIMING))
            await conn.until(lambda: len(conn.sent) >= 1)  # headers out, priming held for the answer
            session.close_request_stream(1)
    assert conn.bodies() == [PRIMING]
    assert conn.sent[-1]["more_body"] is False


async def test_an_expired_token_ends_the_connection_with_a_retry_once_the_client_can_resume() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-06-18", MemoryEventStore())
    stream = session.open_request_stream([1])
    conn = Recorder()
    ended = anyio.Event()

    async def serve() -> None:
        # Already expired, but the client has no event id yet (no priming event in this era):
        # cutting now would lose the answer, so the writer waits for the first event.
        await write_stream(
            conn.send,
            conn.receive,
            session,
            stream,
            0,
            headers=[],
            keepalive=10,
            encode=streamable_encoder,
            expires_at=0.0,
            retry_ms=250,
        )
        ended.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            await anyio.sleep(0.1)
            assert not ended.is_set(), "not ended before the client could resume"
            await session.emit(Outbound(b'{"n":1}', Kind.NOTIFICATION, None, related_request_id=1))
            await ended.wait()
    events = SSEDecoder().feed(b"".join(conn.bodies()))
    assert [e.id for e in events] == ["1-1"]
    assert b"".join(conn.bodies()).endswith(b"retry: 250\n\n"), "the end tells the client when to come back"
    assert conn.sent[-1]["more_body"] is False
    assert not stream.complete, "the stream itself goes on: the client resumes it with a fresh token"


async def test_an_expiry_while_resumable_ends_the_connection_at_once() -> None:
    session = Session("s", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())
    stream = session.open_request_stream([1])
    await session.emit(Outbound(b'{"n":1}', Kind.NOTIFICATION, None, related_request_id=1))
    conn = Recorder()
    with anyio.fail_after(5):
        await write_stream(
            conn.send,
            conn.receive,
            session,
            stream,
            1,
            headers=[],
            keepalive=10,
            encode=streamable_encoder,
            expires_at=time.time() + 0.2,
            retry_ms=100,
            resumable=True,
        )
    assert b"".join(conn.bodies()) == b"retry: 100\n\n"
