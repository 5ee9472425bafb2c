"""Load the server a user names: ``path/to/file.py:attr`` or ``package.module:attr``, like uvicorn.

``attr`` may be a server object or a zero-argument function that returns one.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any


class LoadError(Exception):
    pass


def load_target(spec: str) -> Any:
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr:
        raise LoadError(f"{spec!r} is not FILE.py:ATTR or module:ATTR")
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).resolve()
        if not path.is_file():
            raise LoadError(f"no such file: {module_part}")
        name = f"_mcp_sse_app_{path.stem}"
        file_spec = importlib.util.spec_from_file_location(name, path)
        if file_spec is None or file_spec.loader is None:
            raise LoadError(f"cannot load {module_part}")
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent))
        file_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise LoadError(f"cannot import {module_part}: {exc}") from exc
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise LoadError(f"{module_part} has no attribute {attr!r}") from None
    from mcp.server.lowlevel.server import Server
    from mcp.server.mcpserver import MCPServer

    if not isinstance(target, Server | MCPServer) and callable(target):
        target = target()
    if not isinstance(target, Server | MCPServer):
        raise LoadError(f"{spec} is a {type(target).__name__}, not an mcp Server or MCPServer")
    return target
