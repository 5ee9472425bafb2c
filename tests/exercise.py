"""The exchange every interop test runs: initialize, list, a call with 500 progress notifications,
a call that logs, a ping. Shared so that every pairing of peers is held to the same bar."""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp import ClientSession


class Recorder:
    def __init__(self) -> None:
        self.progress: list[float] = []
        self.logs: list[Any] = []

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append(progress)

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params.data)


async def exercise(session: ClientSession, recorder: Recorder) -> None:
    init = await session.initialize()
    assert init.server_info.name == "mcp-sse tests"
    tools = await session.list_tools()
    assert {"count", "shout", "echo"} <= {t.name for t in tools.tools}

    result = await session.call_tool("count", {"to": 500}, progress_callback=recorder.on_progress)
    assert not result.is_error
    assert result.content[0].text == "counted to 500"  # type: ignore[union-attr]
    assert recorder.progress == [float(i) for i in range(1, 501)]

    result = await session.call_tool("shout", {"text": "hey"})
    assert result.content[0].text == "HEY"  # type: ignore[union-attr]
    assert recorder.logs == ["shouting hey"]

    await session.send_ping()
