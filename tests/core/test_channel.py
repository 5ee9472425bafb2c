"""The session's inbound channel: bounded, closeable, and nothing lost or duplicated on the way."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from mcp_sse.core.channel import Channel, Wakeup

pytestmark = pytest.mark.anyio


async def test_a_full_channel_holds_the_sender_until_there_is_room() -> None:
    channel: Channel[int] = Channel(2)
    await channel.send(1)
    await channel.send(2)
    sent = anyio.Event()

    async def third() -> None:
        await channel.send(3)
        sent.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        await anyio.sleep(0.05)
        assert not sent.is_set() and len(channel) == 2, "the third send waits: backpressure"
        assert await channel.receive() == 1
        with anyio.fail_after(5):
            await sent.wait()
    assert [await channel.receive(), await channel.receive()] == [2, 3]


async def test_close_lets_the_receiver_drain_then_ends_it() -> None:
    channel: Channel[str] = Channel(4)
    await channel.send("a")
    channel.close()
    with pytest.raises(anyio.ClosedResourceError):
        await channel.send("b")
    assert await channel.receive() == "a"
    with pytest.raises(anyio.EndOfStream):
        await channel.receive()


async def test_close_wakes_a_waiting_receiver_and_a_waiting_sender() -> None:
    channel: Channel[int] = Channel(1)
    await channel.send(0)
    outcomes: list[str] = []

    async def blocked_sender() -> None:
        try:
            await channel.send(1)
        except anyio.ClosedResourceError:
            outcomes.append("sender told")

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked_sender)
        await anyio.sleep(0.05)
        channel.close()
    assert outcomes == ["sender told"]
    assert await channel.receive() == 0
    empty: Channel[int] = Channel(1)

    async def blocked_receiver() -> None:
        try:
            await empty.receive()
        except anyio.EndOfStream:
            outcomes.append("receiver told")

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked_receiver)
        await anyio.sleep(0.05)
        empty.close()
    assert outcomes == ["sender told", "receiver told"]


async def test_a_cancelled_receiver_passes_its_wake_up_on() -> None:
    """Two receivers wait; the one woken is cancelled before it runs: the item must reach the other."""
    channel: Channel[int] = Channel(4)
    first = asyncio.ensure_future(channel.receive())
    second = asyncio.ensure_future(channel.receive())
    await asyncio.sleep(0.01)
    await channel.send(7)  # wakes the first waiter...
    first.cancel()  # ...which is cancelled before it can take the item
    with anyio.fail_after(5):
        assert await second == 7
    assert first.cancelled()


async def test_a_wakeup_wakes_every_waiter_and_one_cancelled_waiter_spoils_nothing() -> None:
    wakeup = Wakeup()
    first = asyncio.ensure_future(wakeup.wait())
    second = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0.01)
    assert not second.done(), "cancelling one waiter must not wake or cancel the other"
    wakeup.set()
    with anyio.fail_after(5):
        await second
    assert first.cancelled() and wakeup.is_set()
    with anyio.fail_after(5):
        await wakeup.wait()  # already set: returns at once
