"""A TCP proxy on loopback that misbehaves on purpose: it cuts connections at seeded random byte
offsets ("chaos"), or stops forwarding anything at all ("blackhole"), to test what clients survive."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio
from anyio.abc import SocketStream

Mode = Literal["pass", "chaos", "blackhole"]


class TCPProxy:
    def __init__(
        self,
        target_port: int,
        *,
        seed: int = 0,
        cuts_wanted: int = 0,
        min_offset: int = 600,
        max_offset: int = 40_000,
    ) -> None:
        self.target_port = target_port
        self.rng = random.Random(seed)
        self.cuts_wanted = cuts_wanted
        self.min_offset = min_offset
        self.max_offset = max_offset
        self.mode: Mode = "chaos" if cuts_wanted else "pass"
        self.cuts = 0
        self.connections = 0
        self.port = 0
        self._open: set[anyio.CancelScope] = set()

    def cut_all(self) -> None:
        """Drop every open connection now, as a crashing proxy or network would."""
        for scope in list(self._open):
            scope.cancel()
        self.cuts += len(self._open)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TCPProxy]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._handle)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()

    async def _handle(self, client: SocketStream) -> None:
        self.connections += 1
        cut_at = None
        if self.mode == "chaos" and self.cuts < self.cuts_wanted:
            cut_at = self.rng.randint(self.min_offset, self.max_offset)
        try:
            async with client, await anyio.connect_tcp("127.0.0.1", self.target_port) as upstream:
                async with anyio.create_task_group() as tg:
                    self._open.add(tg.cancel_scope)
                    tg.start_soon(self._pipe, client, upstream, None, tg.cancel_scope)
                    tg.start_soon(self._pipe, upstream, client, cut_at, tg.cancel_scope)
                self._open.discard(tg.cancel_scope)
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream, anyio.ClosedResourceError):
            pass

    async def _pipe(
        self, source: SocketStream, sink: SocketStream, cut_at: int | None, scope: anyio.CancelScope
    ) -> None:
        sent = 0
        try:
            async for chunk in source:
                if self.mode == "blackhole":
                    continue
                if cut_at is not None and sent + len(chunk) >= cut_at and self.cuts < self.cuts_wanted:
                    await sink.send(chunk[: cut_at - sent])
                    self.cuts += 1
                    scope.cancel()
                    return
                await sink.send(chunk)
                sent += len(chunk)
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        scope.cancel()
