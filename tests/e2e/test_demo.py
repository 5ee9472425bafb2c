"""``mcp-sse demo`` as a newcomer runs it, driven by ``mcp-sse call``: progress, matches as they are
found, the ranked answer, and with ``--drop-every`` the line that says it resumed with nothing lost."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import ROOT, mcp_sse


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for i in range(60):
        body = f"def handler_{i}():\n    return {i}\n"
        repeats = {7: 1, 23: 2, 41: 3}.get(i, 0)
        body += "# the needle is here\n" * repeats
        (root / f"module_{i:02d}.py").write_text(body)
    (root / "guide.md").write_text("# Guide\nThe needle in the docs.\n")
    (root / "notes.md").write_text("# Notes\nNothing to see.\n")
    return root


def call(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_sse", "call", url, *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def demo(corpus: Path) -> Iterator[str]:
    with mcp_sse("demo", "--port", "0", "--root", str(corpus), "--scan-delay-ms", "1") as url:
        yield url


@pytest.fixture(scope="module")
def dropping_demo(corpus: Path) -> Iterator[str]:
    with mcp_sse("demo", "--port", "0", "--root", str(corpus), "--scan-delay-ms", "1", "--drop-every", "15") as url:
        yield url


def test_search_code_streams_progress_and_matches_then_ranks(demo: str) -> None:
    done = call(demo, "search_code", "--arg", "query=needle", "--arg", "limit=2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "2 best of 3 matching code files for 'needle':"
    assert lines[1].startswith("1. module_41.py"), "bm25: the file saying it most often ranks first"
    found = re.findall(r"found (module_\d+\.py)", done.stderr)
    assert found == ["module_07.py", "module_23.py", "module_41.py"], "matches stream in scan order"
    assert "60/60" in done.stderr, "progress counts the files scanned"
    assert "resumed" not in done.stderr


def test_search_docs(demo: str) -> None:
    done = call(demo, "search_docs", "--arg", "query=needle")
    assert done.returncode == 0, done.stderr
    assert "1. guide.md" in done.stdout


def test_drop_every_shows_the_resume_and_loses_nothing(dropping_demo: str) -> None:
    done = call(dropping_demo, "search_code", "--arg", "query=needle")
    assert done.returncode == 0, done.stderr
    resumes = re.findall(r"resumed after event (\d+-\d+), (\d+) lost", done.stderr)
    assert len(resumes) >= 3, done.stderr  # 60 progress events and 3 logs, cut every 15
    assert all(lost == "0" for _, lost in resumes)
    assert re.findall(r"found (module_\d+\.py)", done.stderr) == ["module_07.py", "module_23.py", "module_41.py"]
    assert "3 best of 3 matching code files" in done.stdout
    assert "0 event(s) lost, 0 duplicate(s) dropped" in done.stderr.replace("\n", " ")


def test_the_demo_keeps_its_log_in_sqlite_and_cleans_up(corpus: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_sse", "demo", "--port", "0", "--root", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(5)]
        store = next(line.split(":", 1)[1].strip() for line in banner if line.strip().startswith("Event log:"))
        assert store.startswith("sqlite:"), banner
        database = Path(store.removeprefix("sqlite:"))
        assert database.exists(), "the store opened its file"
    finally:
        proc.terminate()
        code = proc.wait(timeout=10)
    assert code == 143, "SIGTERM ends the demo cleanly (uvicorn's graceful shutdown, then exit)"
    assert not database.parent.exists(), "the demo's scratch directory is removed"
