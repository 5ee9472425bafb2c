"""A bounded, closeable queue from the HTTP edge to the upstream, on asyncio futures alone.

anyio's memory streams do the same job with a checkpoint on every send and a backend lookup on
every wait; on the request path of every call that was a measurable share of the CPU (W2 in
docs/benchmarks.md). This keeps their contract: ``send`` waits while the buffer is full, raises
``anyio.ClosedResourceError`` once closed; ``receive`` drains what is left after a close, then
raises ``anyio.EndOfStream``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class Channel(Generic[T]):
    __slots__ = ("_closed", "_getters", "_items", "_limit", "_putters")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: deque[T] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, item: T) -> None:
        while len(self._items) >= self._limit and not self._closed:
            await _wait_in(self._putters)
        if self._closed:
            raise anyio.ClosedResourceError
        self._items.append(item)
        _wake_one(self._getters)

    async def receive(self) -> T:
        while not self._items:
            if self._closed:
                raise anyio.EndOfStream
            await _wait_in(self._getters)
        item = self._items.popleft()
        _wake_one(self._putters)
        return item

    def close(self) -> None:
        """No more sends; a receiver gets what is buffered, then ``EndOfStream``."""
        self._closed = True
        for waiters in (self._getters, self._putters):
            while waiters:
                _wake_one(waiters)


async def _wait_in(waiters: deque[asyncio.Future[None]]) -> None:
    future = asyncio.get_running_loop().create_future()
    waiters.append(future)
    try:
        await future
    except BaseException:
        if future.done() and not future.cancelled():
            _wake_one(waiters)  # we were woken and then cancelled: pass the wake-up on
        else:
            waiters.remove(future)
        raise


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        future = waiters.popleft()
        if not future.done():
            future.set_result(None)
            return
