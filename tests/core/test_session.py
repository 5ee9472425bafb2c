"""Routing: every outbound message lands on exactly one stream, the right one (MCP 2025-11-25,
Transports, "Sending Messages to the Server" to "Multiple Connections":
https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server)."""

from __future__ import annotations

import orjson
import pytest

from mcp_sse.core.memory_store import MemoryEventStore
from mcp_sse.core.session import STANDALONE, Outbound, Session, SessionKind
from mcp_sse.wire.jsonrpc import Kind

pytestmark = pytest.mark.anyio


def make_session(kind: SessionKind = SessionKind.STREAMABLE) -> Session:
    return Session("sid", kind, "2025-11-25", MemoryEventStore())


async def payloads(session: Session, key: int) -> list[bytes]:
    stream = session.streams.get(key) or session.stream_for_resume(key)
    assert stream is not None
    return [e.payload for e in await session.read(stream, 0)]


async def test_response_and_related_messages_go_to_the_request_stream() -> None:
    session = make_session()
    stream = session.open_request_stream([5])
    await session.emit(Outbound(b"progress", Kind.NOTIFICATION, None, related_request_id=5))
    await session.emit(Outbound(b"sampling", Kind.REQUEST, 100, related_request_id=5))
    await session.emit(Outbound(b"unrelated", Kind.NOTIFICATION))
    assert not stream.complete
    await session.emit(Outbound(b"answer", Kind.RESPONSE, 5))
    assert stream.complete
    assert await payloads(session, stream.key) == [b"progress", b"sampling", b"answer"]
    assert await payloads(session, STANDALONE) == [b"unrelated"]


async def test_related_to_an_answered_request_falls_back_to_the_standalone_stream() -> None:
    session = make_session()
    stream = session.open_request_stream([1])
    await session.emit(Outbound(b"answer", Kind.RESPONSE, 1))
    await session.emit(Outbound(b"late", Kind.NOTIFICATION, None, related_request_id=1))
    assert await payloads(session, stream.key) == [b"answer"]
    assert await payloads(session, STANDALONE) == [b"late"]


async def test_string_and_integer_ids_are_different_requests() -> None:
    session = make_session()
    s_int = session.open_request_stream([1])
    s_str = session.open_request_stream(["1"])
    await session.emit(Outbound(b"for-str", Kind.RESPONSE, "1"))
    assert s_str.complete and not s_int.complete


async def test_batch_stream_completes_after_its_last_response() -> None:
    session = make_session()
    stream = session.open_request_stream([1, 2])
    await session.emit(Outbound(b"a", Kind.RESPONSE, 2))
    assert not stream.complete
    await session.emit(Outbound(b"b", Kind.ERROR, 1))
    assert stream.complete


async def test_unanswered_request_gets_a_cancelled_error() -> None:
    session = make_session()
    stream = session.open_request_stream([9])
    await session.request_unanswered(9)
    assert stream.complete
    [payload] = await payloads(session, stream.key)
    assert orjson.loads(payload)["error"]["code"] == -32800


async def test_json_mode_streams_carry_only_responses() -> None:
    session = make_session()
    stream = session.open_request_stream([1], json_mode=True)
    await session.emit(Outbound(b"progress", Kind.NOTIFICATION, None, related_request_id=1))
    await session.emit(Outbound(b"answer", Kind.RESPONSE, 1))
    assert await payloads(session, stream.key) == [b"answer"]


async def test_legacy_sessions_have_one_stream_for_everything() -> None:
    session = make_session(SessionKind.LEGACY_SSE)
    await session.emit(Outbound(b"answer", Kind.RESPONSE, 1))
    await session.emit(Outbound(b"note", Kind.NOTIFICATION, None, related_request_id=1))
    assert await payloads(session, STANDALONE) == [b"answer", b"note"]


async def test_closed_session_refuses_messages() -> None:
    from mcp_sse.core.session import Inbound, SessionClosed
    from mcp_sse.wire.jsonrpc import classify

    session = make_session()
    await session.close()
    with pytest.raises(SessionClosed):
        await session.send(Inbound(classify({"jsonrpc": "2.0", "method": "x"}), {}))


async def test_server_side_close_only_for_clients_that_poll() -> None:
    """Older clients would take a closed POST stream as the end of the request: only 2025-11-25 lets a
    server close the connection early, for polling (MCP 2025-11-25, Transports, "Sending Messages to
    the Server": https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server)."""
    import anyio

    for version, closes in [("2025-11-25", True), ("2025-06-18", False), ("2025-03-26", False)]:
        session = Session("sid", SessionKind.STREAMABLE, version, MemoryEventStore())
        stream = session.open_request_stream([1])
        scope = anyio.CancelScope()
        stream.attach(scope)
        session.close_request_stream(1)
        assert scope.cancel_called is closes, version


async def test_a_reader_that_never_drains_is_cut_after_the_timeout() -> None:
    import anyio

    session = Session("sid", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore(), backlog_limit=2)
    session.slow_consumer_timeout = 0.2
    stream = session.open_request_stream([1])
    assert stream.expecting_writer, "a POST stream waits for its own connection"
    stuck = anyio.CancelScope()
    stream.attach(stuck)
    with anyio.fail_after(5):
        for i in range(4):  # the third append waits 0.2 s for room, then cuts the reader and goes on
            await session.emit(Outbound(b"%d" % i, Kind.NOTIFICATION, None, related_request_id=1))
    assert stuck.cancel_called
    assert [e.payload for e in await session.read(stream, 0)] == [b"0", b"1", b"2", b"3"]


async def test_a_draining_reader_lets_the_producer_on() -> None:
    import anyio

    session = Session("sid", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore(), backlog_limit=2)
    stream = session.open_request_stream([1])
    reader = anyio.CancelScope()
    stream.attach(reader)

    async def drain() -> None:
        while stream.sent < 6:
            await anyio.sleep(0.01)
            stream.mark_sent(stream.appended)

    async with anyio.create_task_group() as tg:
        tg.start_soon(drain)
        with anyio.fail_after(5):
            for i in range(6):
                await session.emit(Outbound(b"%d" % i, Kind.NOTIFICATION, None, related_request_id=1))
    assert not reader.cancel_called
