"""The read stream ``connect()`` yields: anyio's contract, with fewer loop turns per message."""

from __future__ import annotations

import anyio
import pytest

from mcp_sse.client.read_stream import READY_RUN, ReadyFirstReceiveStream

pytestmark = pytest.mark.anyio


async def test_buffered_messages_come_in_order_then_end_of_stream() -> None:
    send, inner = anyio.create_memory_object_stream[int](16)
    read = ReadyFirstReceiveStream(inner)
    for i in range(10):
        send.send_nowait(i)
    send.close()
    assert [item async for item in read] == list(range(10))
    with pytest.raises(anyio.EndOfStream):
        await read.receive()


async def test_an_empty_buffer_waits_for_the_next_message() -> None:
    send, inner = anyio.create_memory_object_stream[str](1)
    read = ReadyFirstReceiveStream(inner)
    async with anyio.create_task_group() as tg:

        async def later() -> None:
            await anyio.sleep(0.01)
            await send.send("late")

        tg.start_soon(later)
        assert await read.receive() == "late"


async def test_a_reader_of_a_full_buffer_still_lets_other_tasks_run() -> None:
    """Not a loop turn per message, but one per READY_RUN: handlers a reader spawns per message
    (ClientSession spawns two per notification) run in step instead of piling up."""
    send, inner = anyio.create_memory_object_stream[int](100)
    read = ReadyFirstReceiveStream(inner)
    for i in range(100):
        send.send_nowait(i)
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(count_turns)
        await anyio.lowlevel.checkpoint()
        before = turns
        for _ in range(100):
            await read.receive()
        during = turns - before
        tg.cancel_scope.cancel()
    assert 100 // READY_RUN - 1 <= during <= 100 // READY_RUN + 1, during


async def test_closed_read_side_raises_and_reports_statistics() -> None:
    send, inner = anyio.create_memory_object_stream[int](4)
    read = ReadyFirstReceiveStream(inner)
    send.send_nowait(1)
    assert read.statistics().current_buffer_used == 1
    assert read.receive_nowait() == 1
    await read.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await read.receive()
    with pytest.raises(anyio.BrokenResourceError):
        send.send_nowait(2)
