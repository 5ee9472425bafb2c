"""The benchmark harness still runs (a few messages per target, no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_push_bench_runs_every_target(tmp_path: Path) -> None:
    out = tmp_path / "push.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.push", "--notifications", "50", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert set(results) >= {"sdk", "mcp-sse", "mcp-sse-raw", "bare"}
    assert all(results[t]["notifications_per_s"]["median"] > 0 for t in ("sdk", "mcp-sse", "mcp-sse-raw", "bare"))
