"""The named states of a session and of its streams, and their transitions, with no socket and no
HTTP: each change happens through a method of the owner, and a change the table does not list is
refused."""

from __future__ import annotations

import pytest

from mcp_sse.core.memory_store import MemoryEventStore
from mcp_sse.core.session import (
    STANDALONE,
    InvalidTransition,
    Outbound,
    ReaderState,
    Session,
    SessionClosed,
    SessionKind,
    SessionState,
    Stream,
)
from mcp_sse.wire.jsonrpc import Kind, classify

pytestmark = pytest.mark.anyio


class Connection:
    """What a stream holds of a connection: something to cancel."""

    def __init__(self) -> None:
        self.cancelled = False
        self.retry_ms: int | None = None

    def cancel(self, retry_ms: int | None = None) -> None:
        self.cancelled = True
        self.retry_ms = retry_ms


def make_session() -> Session:
    return Session("sid", SessionKind.STREAMABLE, "2025-11-25", MemoryEventStore())


def test_session_transitions_are_a_table() -> None:
    assert SessionState.STARTING.can_become(SessionState.RUNNING)
    assert SessionState.STARTING.can_become(SessionState.CLOSED)
    assert SessionState.RUNNING.can_become(SessionState.CLOSED)
    assert not SessionState.RUNNING.can_become(SessionState.STARTING)
    assert not any(SessionState.CLOSED.can_become(state) for state in SessionState)


async def test_a_session_runs_its_upstream_then_closing_stops_it_once() -> None:
    session = make_session()
    assert session.state is SessionState.STARTING and not session.closed
    stops: list[str] = []
    session.bind_upstream(lambda: stops.append("stop"))
    assert session.state is SessionState.RUNNING
    with pytest.raises(InvalidTransition):
        session.bind_upstream(lambda: stops.append("again"))  # one upstream per session
    await session.close()
    await session.close()  # closing twice is one close
    assert session.state is SessionState.CLOSED and session.closed
    assert stops == ["stop"]


async def test_a_closed_session_takes_no_message_and_cannot_run_again() -> None:
    session = make_session()
    await session.close()
    assert session.state is SessionState.CLOSED
    with pytest.raises(SessionClosed):
        from mcp_sse.core.session import Inbound

        await session.send(Inbound(classify({"jsonrpc": "2.0", "method": "x"}), {}))
    with pytest.raises(InvalidTransition):
        session.bind_upstream(lambda: None)


def test_reader_transitions_are_a_table() -> None:
    assert ReaderState.UNCLAIMED.can_become(ReaderState.UNATTENDED)
    assert ReaderState.EXPECTED.can_become(ReaderState.ATTACHED)
    assert ReaderState.ATTACHED.can_become(ReaderState.ATTACHED)  # a takeover
    assert ReaderState.UNATTENDED.can_become(ReaderState.ATTACHED)  # a resume
    assert not ReaderState.UNATTENDED.can_become(ReaderState.EXPECTED)
    assert not ReaderState.ATTACHED.can_become(ReaderState.UNCLAIMED)
    assert all(state.can_become(ReaderState.ATTACHED) for state in ReaderState), "any stream can be read"


def test_a_post_stream_expects_its_connection_then_is_read_then_left() -> None:
    session = make_session()
    stream = session.open_request_stream([1])
    assert stream.reader is ReaderState.EXPECTED and stream.has_reader and stream.expecting_writer
    first, second = Connection(), Connection()
    stream.attach(first)
    assert stream.reader is ReaderState.ATTACHED and stream.writer is first
    stream.attach(second)  # a newer connection takes the stream over and ends the older one
    assert first.cancelled and not second.cancelled and stream.writer is second
    stream.detach(first)  # the older one's late detach changes nothing
    assert stream.reader is ReaderState.ATTACHED
    stream.detach(second)
    assert stream.reader is ReaderState.UNATTENDED and not stream.has_reader and stream.writer is None


def test_a_json_mode_stream_expects_no_connection() -> None:
    stream = make_session().open_request_stream([1], json_mode=True)
    assert stream.reader is ReaderState.UNCLAIMED and not stream.has_reader


def test_cutting_off_an_expected_reader_stops_holding_the_producer() -> None:
    stream = Stream(1, pending=[1], expecting_writer=True)
    stream.cut_off()
    assert stream.reader is ReaderState.UNATTENDED and not stream.has_reader


def test_cutting_off_an_attached_reader_cancels_it_and_it_detaches_as_it_ends() -> None:
    stream = Stream(1, pending=[1], expecting_writer=True)
    connection = Connection()
    stream.attach(connection)
    stream.cut_off()
    assert connection.cancelled and stream.reader is ReaderState.ATTACHED
    stream.detach(connection)
    assert stream.reader is ReaderState.UNATTENDED


async def test_only_the_first_plain_get_takes_the_standalone_backlog() -> None:
    session = make_session()
    await session.emit(Outbound(b"early", Kind.NOTIFICATION))
    await session.emit(Outbound(b"early too", Kind.NOTIFICATION))
    assert session.streams[STANDALONE].reader is ReaderState.UNCLAIMED
    assert await session.standalone_cursor() == 0
    assert session.streams[STANDALONE].reader is ReaderState.UNATTENDED
    assert await session.standalone_cursor() == 2, "a later GET starts live"


async def test_a_stream_completes_when_its_last_request_is_answered_and_stays_complete() -> None:
    session = make_session()
    stream = session.open_request_stream([1, 2])
    await session.emit(Outbound(b"a1", Kind.RESPONSE, 1))
    assert not stream.complete
    await session.emit(Outbound(b"a2", Kind.RESPONSE, 2))
    assert stream.complete
    forgotten = session.stream_for_resume(stream.key)
    assert forgotten is stream
    session.forget_stream(stream)
    stand_in = session.stream_for_resume(stream.key)
    assert stand_in is not None and stand_in is not stream and stand_in.complete
    assert stand_in.reader is ReaderState.UNCLAIMED
