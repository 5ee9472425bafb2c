"""What every workload does with its results: the median-and-spread cell, and the optional JSON file."""

from __future__ import annotations

import json
from typing import Any


def spread(stats: dict[str, float], width: int = 10) -> str:
    """``median (min-max)`` of a rate, thousands separated, the median right-aligned in ``width``."""
    return f"{stats['median']:>{width},.0f} ({stats['min']:,.0f}-{stats['max']:,.0f})"


def save_json(path: str | None, results: dict[str, Any]) -> None:
    """Write the results where ``--json`` asked; nothing when it was not given."""
    if path:
        with open(path, "w") as out:
            json.dump(results, out, indent=2)
