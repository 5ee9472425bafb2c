"""The read stream ``connect()`` yields: anyio's memory stream, with fewer loop turns per message.

anyio's ``MemoryObjectReceiveStream.receive`` checkpoints before it looks at its buffer: a loop
turn and a backend lookup for every message the session reads, even when the transport has put a
whole chunk's worth of events there already. Together they were a fifth of the client's CPU per
received notification (docs/benchmarks.md, client receive cost).

Here a reader gets up to ``READY_RUN`` buffered messages in a row, then yields once. Not more:
``ClientSession`` spawns two tasks per notification, and a reader that takes a long run of
messages without yielding piles those tasks up, which costs more (in task bookkeeping and garbage
collection) than the turns it saves. On asyncio the yield is a plain ``asyncio.sleep(0)``, which
is what anyio's checkpoint does there, without looking the backend up each time; any other
backend gets anyio's own checkpoint. An empty buffer waits through anyio, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
from anyio.abc import ObjectReceiveStream
from anyio.lowlevel import checkpoint
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectStreamStatistics

__all__ = ["READY_RUN", "ReadyFirstReceiveStream"]

T = TypeVar("T")

READY_RUN = 4
"""Messages a reader may take from the buffer in a row before it yields to the loop."""


def _loop_yield() -> Callable[[], Awaitable[None]]:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return checkpoint
    return _asyncio_yield


async def _asyncio_yield() -> None:
    await asyncio.sleep(0)


class ReadyFirstReceiveStream(ObjectReceiveStream[T], Generic[T]):
    """``receive`` takes a buffered message without a loop turn, up to ``READY_RUN`` in a row."""

    def __init__(self, inner: MemoryObjectReceiveStream[T]) -> None:
        self._inner = inner
        self._taken = 0  # messages taken since the last yield
        self._yield = _loop_yield()

    async def receive(self) -> T:
        self._taken += 1
        if self._taken >= READY_RUN:
            self._taken = 0
            await self._yield()
        try:
            return self._inner.receive_nowait()
        except anyio.WouldBlock:
            self._taken = 0
            return await self._inner.receive()  # an empty buffer: wait (that is a checkpoint too)

    def receive_nowait(self) -> T:
        return self._inner.receive_nowait()

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        self._inner.close()

    def statistics(self) -> MemoryObjectStreamStatistics:
        return self._inner.statistics()
