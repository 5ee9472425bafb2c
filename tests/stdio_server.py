"""The test server over stdio, as a separate process: what the gateway tests put behind ``serve --``.

Extra tools: ``crash`` ends the process mid-call; ``sleepy`` records whether it was cancelled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers import build_test_server


def main() -> None:
    server = build_test_server()

    @server.tool()
    async def crash(ctx: Context | None = None) -> str:
        """Exit the whole process in the middle of a call."""
        assert ctx is not None
        await ctx.report_progress(1, 2)
        await anyio.sleep(0.1)
        os._exit(3)

    @server.tool()
    async def sleepy(marker: str, seconds: float = 30) -> str:
        """Sleep; if cancelled, write 'cancelled' to the marker file."""
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            Path(marker).write_text("cancelled")  # noqa: ASYNC240 - a test marker, once
            raise
        return "slept"

    @server.tool()
    async def environment(name: str) -> str:
        """An environment variable and the working directory; also says hello on stderr."""
        print(f"environment asked for {name}", file=sys.stderr, flush=True)
        return f"{os.environ.get(name)} in {os.getcwd()}"

    @server.tool()
    async def whoami() -> str:
        """This process's id: tells a shared child from per-session ones."""
        return str(os.getpid())

    server.run("stdio")


if __name__ == "__main__":
    main()
