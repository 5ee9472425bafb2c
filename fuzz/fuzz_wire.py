"""Fuzz what mcp-sse reads from a peer it does not trust, for as long as you let it run.

Targets: the SSE decoder (a client reading a server's stream), ``jsonrpc.parse_body`` (a POST
body), ``header_map`` (the ASGI header list) with the Host/Origin guard behind it, and
``parse_event_id`` (a ``Last-Event-ID`` header). The invariants are the property tests' (see
tests/wire/test_jsonrpc_properties.py and tests/server/test_header_properties.py): nothing raises
but what is documented, and what comes out is well formed. See fuzz/README.md.

    python fuzz/fuzz_wire.py --seconds 60        # Hypothesis drives it: no extra dependency
    python fuzz/fuzz_wire.py --atheris -max_total_time=60   # coverage-guided, if atheris is installed
    python fuzz/fuzz_wire.py --replay CRASH_FILE  # run one saved failing input again
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import itertools
import random
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_sse.config import ServerConfig
from mcp_sse.core.session_record import format_event_id, parse_event_id
from mcp_sse.errors import Rejection
from mcp_sse.server.asgi import HeaderList, header_map
from mcp_sse.server.security import RequestGuard
from mcp_sse.wire.jsonrpc import MAX_ID_LENGTH, FramingError, Kind, check_batch, error_body, parse_body
from mcp_sse.wire.sse import ServerSentEvent, SSEDecoder

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRASHES = ROOT / ".hypothesis" / "fuzz_wire_crashes"  # .hypothesis/ is git-ignored

# --- what the fuzzer draws -----------------------------------------------------------------------

SSE_FRAGMENTS = [
    *(b"data:", b"data: ", b"id:", b"id: ", b"event:", b"event: ", b"retry:", b"retry: ", b":", b" "),
    *(b"\r", b"\n", b"\r\n", b"\xef\xbb\xbf", b"\xef", b"\xe2\x82", b"\xff", b"\x00", b"7", b"9" * 5000, b"x"),
]
JSON_FRAGMENTS = [
    *(b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\\u0000", b"\\ud800", b" ", b"\n", b"\x00", b"\xff"),
    *(b'"jsonrpc"', b'"2.0"', b'"id"', b'"method"', b'"params"', b'"result"', b'"error"', b'"code"', b'"initialize"'),
    *(b"null", b"true", b"false", b"0", b"-1", b"1e999", b"1.5", b"18446744073709551615", b"18446744073709551616"),
    *(b'{"jsonrpc":"2.0","id":1,"method":"ping"}', b'{"jsonrpc":"2.0","id":"1","result":{}}', b"[" * 1100),
]
HEADER_NAMES = [b"host", b"Host", b"origin", b"Origin", b"last-event-id", b"mcp-session-id", b"accept"]
HEADER_FRAGMENTS = [
    *(b"localhost", b"127.0.0.1", b"[::1]", b"[", b"]", b":", b":8000", b"evil.example", b".", b"@"),
    *(b"http://", b"https://", b"null", b"/", b" ", b"\t", b"\xa0", b"\x00", b"\r", b"\xb2", b"\xff"),
    *(b"1", b"-", b"0", b"2.3-4", b"9" * 4400),
]


def _mixed(fragments: list[bytes], max_size: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=max_size), st.lists(st.sampled_from(fragments), max_size=max_size // 4).map(b"".join)
    )


# Event streams line by line: a field, a value of any bytes, a line ending; blank lines dispatch.
sse_lines = st.lists(
    st.tuples(
        st.sampled_from([b"data", b"id", b"event", b"retry", b"", b"Data", b"x"]),
        st.sampled_from([b":", b": ", b"", b":  "]),
        _mixed(SSE_FRAGMENTS, 24),
        st.sampled_from([b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"\r\n\r\n"]),
    ).map(b"".join),
    max_size=12,
).map(b"".join)
sse_streams = st.one_of(_mixed(SSE_FRAGMENTS, 200), sse_lines)

# JSON that parses, shaped like JSON-RPC more often than not: what gets past orjson to classify.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["2.0", "initialize", "ping", "", "\x00", "\u2028", "x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1)]
    ),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "code"]), inner)
    ),
    max_leaves=16,
)
json_bodies = st.one_of(_mixed(JSON_FRAGMENTS, 200), json_values.map(orjson.dumps))
header_values = _mixed(HEADER_FRAGMENTS, 80)
raw_headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES) | st.binary(max_size=16), header_values), max_size=6)


@dataclass
class Case:
    """One input, as the fuzzer drew it; printed when it fails."""

    sse: bytes = b""
    cuts: list[int] = field(default_factory=list)
    body: bytes = b""
    headers: HeaderList = field(default_factory=list)
    event_id: bytes = b""


last_case = Case()

# --- the invariants --------------------------------------------------------------------------------


def check_sse(blob: bytes, cuts: list[int]) -> None:
    whole = SSEDecoder()
    events = whole.feed(blob) + whole.close()
    pieces = SSEDecoder()
    chunked: list[ServerSentEvent] = []
    bounds = [0, *sorted(c % (len(blob) + 1) for c in cuts), len(blob)]
    for start, end in itertools.pairwise(bounds):
        chunked += pieces.feed(blob[start:end])
    chunked += pieces.close()
    assert chunked == events, "the chunking changed what was decoded"
    assert (pieces.last_event_id, pieces.retry) == (whole.last_event_id, whole.retry)
    for event in events:
        assert "\r" not in event.data
        assert not {"\r", "\n"} & set(event.event) and event.event
        assert not {"\r", "\n", "\x00"} & set(event.id)
    assert not {"\r", "\n", "\x00"} & set(whole.last_event_id)
    assert whole.retry is None or (type(whole.retry) is int and whole.retry >= 0)


def _valid_id(value: object) -> bool:
    return type(value) is int or (type(value) is str and len(value) <= MAX_ID_LENGTH)


def check_body(raw: bytes) -> None:
    try:
        body = parse_body(raw)
    except FramingError as exc:
        assert exc.request_id is None or _valid_id(exc.request_id)
        orjson.loads(error_body(exc.code, exc.message, exc.request_id))
        return
    assert body.messages
    for message in body.messages:
        assert isinstance(message.kind, Kind)
        assert message.id is None or _valid_id(message.id)
        assert message.method is None or type(message.method) is str
        echoed = orjson.loads(error_body(-32600, "x", message.id))
        assert echoed["id"] == message.id
    try:
        check_batch(body)
    except FramingError:
        assert body.is_batch


GUARD = RequestGuard(ServerConfig())


def check_headers(raw: HeaderList) -> None:
    headers = header_map({"headers": raw})
    # RFC 9110 read literally: latin-1, names case-insensitive, SP and HTAB around a value are not
    # part of it, repeats joined with ", " in order.
    expected: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1").strip(" \t")
        expected[name] = f"{expected[name]}, {value}" if name in expected else value
    assert headers == expected
    for server in (("127.0.0.1", 8000), ("192.0.2.1", 8000)):
        try:
            GUARD.check({"type": "http", "server": server, "headers": raw}, headers)
        except Rejection as refused:
            assert refused.status in (400, 403, 421)
            orjson.loads(refused.body())
    if "last-event-id" in headers:
        check_event_id(headers["last-event-id"])


def check_event_id(value: str) -> None:
    parsed = parse_event_id(value)
    if parsed is not None:
        assert all(type(n) is int and n >= 0 for n in parsed)
        assert parse_event_id(format_event_id(*parsed)) == parsed


@settings(database=None, deadline=None)
@given(
    sse=sse_streams,
    cuts=st.lists(st.integers(0, 1 << 16), max_size=6),
    body=json_bodies,
    headers=raw_headers,
    event_id=header_values,
)
def fuzz_wire(sse: bytes, cuts: list[int], body: bytes, headers: HeaderList, event_id: bytes) -> None:
    global last_case
    last_case = Case(sse, cuts, body, headers, event_id)
    check_sse(sse, cuts)
    check_body(body)
    check_headers(headers)
    check_event_id(event_id.decode("latin-1"))  # as header_map hands a header over
    check_event_id(event_id.decode("utf-8", "replace"))


fuzz_one_input: Callable[[bytes], bytes | None] = fuzz_wire.hypothesis.fuzz_one_input  # type: ignore[attr-defined]


# --- the loops -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    inputs: int = 0
    valid: int = 0  # inputs Hypothesis could turn into a test case (the rest were too short)
    failure: bytes | None = None
    case: Case | None = None
    error: BaseException | None = None


def _mutate(rng: random.Random, buffer: bytes) -> bytes:
    data = bytearray(buffer)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        at = rng.randrange(len(data) + 1)
        if choice < 0.4 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.7:
            data[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            del data[at : at + rng.randint(1, 16)]
    return bytes(data)


def fuzz(*, seconds: float | None = None, max_inputs: int | None = None, seed: int | None = None) -> Outcome:
    """Run inputs until the time or the count is up, or one fails (then it is in the outcome)."""
    rng = random.Random(seed)
    deadline = None if seconds is None else time.monotonic() + seconds
    pool: list[bytes] = []
    outcome = Outcome()
    while (max_inputs is None or outcome.inputs < max_inputs) and (deadline is None or time.monotonic() < deadline):
        if pool and rng.random() < 0.5:
            buffer = _mutate(rng, rng.choice(pool))
        else:
            buffer = rng.randbytes(rng.choice([64, 256, 1024, 4096]))
        outcome.inputs += 1
        try:
            kept = fuzz_one_input(buffer)
        except Exception as exc:
            outcome.failure, outcome.case, outcome.error = buffer, last_case, exc
            return outcome
        if kept is not None:
            outcome.valid += 1
            if len(pool) < 512:
                pool.append(kept)
            else:
                pool[rng.randrange(len(pool))] = kept
    return outcome


def _report(outcome: Outcome, crashes: Path) -> int:
    if outcome.failure is None:
        print(f"fuzz_wire: {outcome.inputs} inputs ({outcome.valid} valid), no failure")
        return 0
    crashes.mkdir(parents=True, exist_ok=True)
    path = crashes / f"crash-{hashlib.sha1(outcome.failure).hexdigest()[:16]}.bin"
    path.write_bytes(outcome.failure)
    assert outcome.error is not None
    traceback.print_exception(outcome.error)
    print(f"\nfuzz_wire: FAILED after {outcome.inputs} inputs on\n{outcome.case!r}")
    print(f"saved to {path}; run it again with: python fuzz/fuzz_wire.py --replay {path}")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    parser.add_argument("--inputs", type=int, default=None, help="stop after this many inputs")
    parser.add_argument("--seed", type=int, default=None, help="seed of the input generator, to repeat a run")
    parser.add_argument("--crashes", type=Path, default=DEFAULT_CRASHES, help="where failing inputs are saved")
    parser.add_argument("--replay", type=Path, help="run one saved input and show its traceback")
    parser.add_argument("--atheris", action="store_true", help="let atheris (libFuzzer) drive; other args go to it")
    args, rest = parser.parse_known_args(argv)
    if args.replay is not None:
        try:
            fuzz_one_input(args.replay.read_bytes())
        except Exception:
            print(repr(last_case))
            raise
        print("fuzz_wire: the input passes")
        return 0
    if args.atheris:
        try:
            atheris = importlib.import_module("atheris")  # optional, never a dependency
        except ImportError:
            parser.error("--atheris needs `pip install atheris` (not a dependency of mcp-sse)")
        atheris.instrument_all()
        atheris.Setup([sys.argv[0], *rest], fuzz_one_input)
        atheris.Fuzz()
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return _report(fuzz(seconds=args.seconds, max_inputs=args.inputs, seed=args.seed), args.crashes)


if __name__ == "__main__":
    sys.exit(main())
