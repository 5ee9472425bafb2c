"""The session's two asyncio primitives: a bounded, closeable queue from the HTTP edge to the
upstream, and a one-shot wake-up for whoever waits on a stream. Both on bare asyncio futures.

anyio's memory streams do the same job with a checkpoint on every send and a backend lookup on
every wait; on the request path of every call that was a measurable share of the CPU (W2 in
docs/benchmarks.md). This keeps their contract: ``send`` waits while the buffer is full, raises
``anyio.ClosedResourceError`` once closed; ``receive`` drains what is left after a close, then
raises ``anyio.EndOfStream``.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

import anyio

__all__ = ["Channel", "Wakeup"]

T = TypeVar("T")


class Channel(Generic[T]):
    __slots__ = ("_closed", "_getters", "_items", "_limit", "_putters")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        # Lists, not deques: at most ``limit`` items and a waiter or two, and a deque's first block
        # alone is 600 bytes, three per session (docs/benchmarks.md, W3: memory per idle stream).
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] = []
        self._putters: list[asyncio.Future[None]] = []
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
        item = self._items.pop(0)
        _wake_one(self._putters)
        return item

    def close(self) -> None:
        """No more sends; a receiver gets what is buffered, then ``EndOfStream``."""
        self._closed = True
        for waiters in (self._getters, self._putters):
            while waiters:
                _wake_one(waiters)


class Wakeup:
    """``asyncio.Event`` without its deque: a set-once flag and a list of waiters made on demand.

    One is made per wait on a stream; an idle stream holds one for as long as it waits, and an
    ``asyncio.Event`` costs 760 bytes there (docs/benchmarks.md, W3: memory per idle stream).
    """

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for future in waiters or ():
            if not future.done():
                future.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        future = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(future)
        try:
            await future
        finally:
            if self._waiters is not None and future in self._waiters:
                self._waiters.remove(future)


async def _wait_in(waiters: list[asyncio.Future[None]]) -> None:
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


def _wake_one(waiters: list[asyncio.Future[None]]) -> None:
    while waiters:
        future = waiters.pop(0)
        if not future.done():
            future.set_result(None)
            return
