"""The benchmark harness still runs (a few messages per target, no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_bench(module: str, args: list[str], tmp_path: Path) -> dict[str, Any]:
    """``python -m bench.<module> ARGS --json FILE`` from the checkout; its JSON results."""
    out = tmp_path / f"{module}.json"
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args, "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def test_push_bench_runs_every_target(tmp_path: Path) -> None:
    results = run_bench("push", ["--notifications", "50", "--repeats", "1"], tmp_path)
    assert set(results) >= {"sdk", "mcp-sse", "mcp-sse-raw", "bare"}
    assert all(results[t]["notifications_per_s"]["median"] > 0 for t in ("sdk", "mcp-sse", "mcp-sse-raw", "bare"))


def test_resume_bench_runs_every_target_exactly_once(tmp_path: Path) -> None:
    results = run_bench("resume", ["--events", "50", "--repeats", "1", "--settle", "0.3"], tmp_path)
    for target in ("sdk-store", "mcp-sse", "mcp-sse-sqlite"):
        assert results[target]["exactly_once"] is True
        assert results[target]["events_per_s"]["median"] > 0


def test_rpc_bench_runs_every_target(tmp_path: Path) -> None:
    results = run_bench("rpc", ["--seconds", "0.3", "--sessions", "1,2", "--repeats", "1"], tmp_path)
    for target in ("sdk", "mcp-sse", "mcp-sse-raw", "bare"):
        assert results[target]["2"]["calls_per_s"]["median"] > 0


def test_rpc_inprocess_bench_runs_every_target(tmp_path: Path) -> None:
    results = run_bench("rpc_inprocess", ["--calls", "5", "--sessions", "2", "--repeats", "1"], tmp_path)
    for target in ("sdk", "mcp-sse", "mcp-sse-raw"):
        assert results[target]["cpu_us_per_call"]["median"] > 0


def test_idle_bench_runs_every_target(tmp_path: Path) -> None:
    results = run_bench("idle", ["--streams", "5", "--echoes", "5"], tmp_path)
    for target in ("sdk", "mcp-sse", "mcp-sse-raw", "bare"):
        assert results[target]["5"]["open_ms_per_stream"] > 0


def test_mcp_sse_bench_runs_the_workloads_in_one_command(tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    done = subprocess.run(
        [sys.executable, "-m", "mcp_sse", "bench", "--quick", "--only", "push,resume", "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "W1 push" in done.stdout and "W4 resume" in done.stdout
    assert set(json.loads(out.read_text())) == {"push", "resume"}


def test_sdk_alone_bench_runs(tmp_path: Path) -> None:
    results = run_bench("sdk_alone", ["--notifications", "100", "--seconds", "0.2", "--repeats", "1"], tmp_path)
    assert results["cpu_us_per_notification"]["median"] > 0
    assert results["cpu_us_per_call_16_sessions"]["median"] > 0


def test_client_receive_bench_runs_every_client_and_the_session_floor(tmp_path: Path) -> None:
    results = run_bench("client_receive", ["--notifications", "50", "--repeats", "1"], tmp_path)
    for client in ("sdk", "mcp-sse", "sdk transport", "mcp-sse transport", "ClientSession alone"):
        assert results[client]["cpu_us_per_notification"]["median"] > 0
    assert results["ClientSession alone"]["cpu_ratio_to_sdk"] > 0


def test_cluster_bench_runs_every_part(tmp_path: Path) -> None:
    results = run_bench("cluster", ["--seconds", "0.3", "--repeats", "1", "--notifications", "50"], tmp_path)
    for target in ("sdk", "mcp-sse", "cluster-w1", "cluster-w2"):
        assert results["rpc16"][target]["calls_per_s"]["median"] > 0
    assert results["workers_2_over_1"] > 0
    assert results["forwarded16"]["forwarded"]["calls_per_s"]["median"] > 0
    assert results["redis_commands_per_message"]["cluster-w1"]["commands"] > 0
