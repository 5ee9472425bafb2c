"""Where ``mcp-sse serve`` and ``proxy`` keep their sessions and event log by default: a SQLite file
in the user's state directory, one per server, so a restart keeps every session and two servers
never share a file or lock each other out.

``$XDG_STATE_HOME/mcp-sse`` (else ``~/.local/state/mcp-sse``; ``%LOCALAPPDATA%\\mcp-sse`` on
Windows), one file per server identity: what is served (the ``--app``, the command, the upstream
URL) and the address it listens on.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

__all__ = ["default_event_store", "state_dir"]


def state_dir() -> Path:
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "mcp-sse"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mcp-sse"


def default_event_store(served: str, host: str, port: int) -> str:
    """``sqlite:PATH`` of the file this server keeps its sessions in (its directory is made, 0700)."""
    identity = f"{served}\0{host}\0{port}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", served).strip("-")[:40] or "server"
    directory = state_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return f"sqlite:{directory / f'{slug}-{port}-{digest}.db'}"
