"""The hand-run fuzz target (fuzz/fuzz_wire.py) on a few hundred inputs, so it cannot rot unseen:
it still imports, still draws valid test cases from raw bytes, passes on today's code, and still
notices when a target breaks."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from mcp_sse.wire.jsonrpc import Body, parse_body

FUZZ_TARGET = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_wire.py"


@pytest.fixture(scope="module")
def target() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("fuzz_wire", FUZZ_TARGET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_fuzz_target_passes_200_inputs(target: ModuleType) -> None:
    outcome = target.fuzz(max_inputs=200, seed=0)
    assert outcome.failure is None, f"{outcome.case!r} failed: {outcome.error!r}"
    assert outcome.inputs == 200
    assert outcome.valid >= 100  # most random buffers must make a test case, or nothing is fuzzed


def test_the_fuzz_target_notices_a_broken_target(target: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_parse_body(raw: bytes) -> Body:
        if b"[" in raw:
            raise KeyError("jsonrpc")
        return parse_body(raw)

    monkeypatch.setattr(target, "parse_body", broken_parse_body)
    outcome = target.fuzz(max_inputs=2000, seed=0)
    assert isinstance(outcome.error, KeyError)
    assert b"[" in outcome.case.body


def test_the_command_line_runs_a_bounded_loop(target: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert target.main(["--seconds", "0.2", "--seed", "1"]) == 0
    assert "no failure" in capsys.readouterr().out
