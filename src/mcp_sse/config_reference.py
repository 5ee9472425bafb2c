"""Render the configuration reference from ``ServerConfig`` itself, so the docs cannot drift.

``python -m mcp_sse.config_reference > docs/configuration.md`` writes it; a test checks the file
matches what this renders.
"""

from __future__ import annotations

import dataclasses

from mcp_sse.config import ServerConfig, option_name

__all__ = ["render"]


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `mcp_sse.ServerConfig` by `python -m mcp_sse.config_reference`; do not edit by hand.",
        "Every field is an option of every server command (`serve --app`, `serve -- CMD`, `proxy`, `demo`).",
        "",
        "| field | command-line option | default | meaning |",
        "|---|---|---|---|",
    ]
    for field in dataclasses.fields(ServerConfig):
        default = field.default
        shown = "`None`" if default is None else f"`{default!r}`" if not isinstance(default, tuple) else "none"
        lines.append(f"| `{field.name}` | `{option_name(field)}` | {shown} | {field.metadata.get('doc', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
