"""The official SDK's private modules are imported in one place only, ``mcp_sse/sdk_compat.py``,
which the ``mcp`` minor-version pin protects; anywhere else a minor release could break us unseen."""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_sse

SOURCES = Path(mcp_sse.__file__).parent
COMPAT = SOURCES / "sdk_compat.py"
SDK_PACKAGES = ("mcp", "mcp_types")


def private_sdk_imports(source: str) -> list[str]:
    """Every import in ``source`` that names a private module or name of the SDK (a part starting with ``_``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] in SDK_PACKAGES and any(part.startswith("_") for part in parts[1:]):
                found.append(name)
    return found


def test_the_check_sees_a_private_import() -> None:
    assert private_sdk_imports("from mcp.server._streamable_http_modern import handle_modern_request") == [
        "mcp.server._streamable_http_modern.handle_modern_request"
    ]
    assert private_sdk_imports("import mcp.shared._httpx_utils") == ["mcp.shared._httpx_utils"]
    assert private_sdk_imports("from mcp.server.lowlevel.server import Server") == []


def test_only_the_compat_module_imports_private_sdk_modules() -> None:
    offenders = {
        str(path.relative_to(SOURCES)): found
        for path in sorted(SOURCES.rglob("*.py"))
        if path != COMPAT and (found := private_sdk_imports(path.read_text("utf-8")))
    }
    assert offenders == {}, "import these through mcp_sse.sdk_compat instead"
    assert private_sdk_imports(COMPAT.read_text("utf-8")), "the compat module is where they live"
