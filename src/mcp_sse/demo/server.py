"""The demo server: search a corpus of docs and code while progress and partial results stream.

``search_docs`` and ``search_code`` walk the corpus file by file, reporting "files scanned of total"
as progress and each match as a log line the moment the scan reaches it, then answer with the
bm25-ranked list. A slow scan is the point: it gives a person something to watch, and a dropped
connection something to resume.
"""

from __future__ import annotations

from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer

from mcp_sse.demo.corpus import Corpus, Kind, default_root


def build_demo_server(root: Path | None = None, scan_delay_ms: float = 5.0) -> MCPServer:
    corpus = Corpus.build(root or default_root())
    server = MCPServer(
        "mcp-sse demo",
        instructions=f"Search the docs and code under {corpus.root}; progress and matches stream as they are found.",
    )

    async def search(kind: Kind, query: str, limit: int, ctx: Context) -> str:
        ranked = corpus.search(kind, query, max(limit, 1) * 5)
        by_path = {hit.path: hit for hit in ranked}
        files = corpus.files[kind]
        for scanned, path in enumerate(files, 1):
            await ctx.report_progress(scanned, len(files), f"scanned {scanned} of {len(files)} files")
            if (hit := by_path.get(path)) is not None:
                await ctx.info(f"found {path}: {hit.snippet}")
            if scan_delay_ms:
                await anyio.sleep(scan_delay_ms / 1000)
        best = ranked[:limit]
        if not best:
            return f"no {kind} matches {query!r} in {len(files)} files"
        lines = [f"{len(best)} best of {len(ranked)} matching {kind} files for {query!r}:"]
        lines += [f"{rank}. {hit.path} ({hit.score:.2f}): {hit.snippet}" for rank, hit in enumerate(best, 1)]
        return "\n".join(lines)

    @server.tool()
    async def search_docs(query: str, limit: int = 10, ctx: Context | None = None) -> str:
        """Search the documentation (Markdown, reST, text) for ``query``; matches stream as found."""
        assert ctx is not None
        return await search("doc", query, limit, ctx)

    @server.tool()
    async def search_code(query: str, limit: int = 20, ctx: Context | None = None) -> str:
        """Search the source code for ``query``; matches stream as found."""
        assert ctx is not None
        return await search("code", query, limit, ctx)

    @server.tool()
    async def count(to: int = 100, delay_ms: int = 10, ctx: Context | None = None) -> str:
        """Count to ``to``, reporting progress at every step (delay_ms between steps)."""
        assert ctx is not None
        for step in range(1, to + 1):
            await ctx.report_progress(step, to, f"step {step} of {to}")
            if delay_ms:
                await anyio.sleep(delay_ms / 1000)
        return f"counted to {to}"

    @server.tool()
    async def echo(text: str) -> str:
        """Return ``text`` unchanged."""
        return text

    return server
