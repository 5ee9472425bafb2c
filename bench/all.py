"""Every workload against every target in one run: W1 push, W2 rpc (over HTTP and in process), W3
idle, W4 resume, and the client receive cost; each prints its table, and ``--json`` gathers every
result in one file.

    .venv/bin/python -m bench.all [--quick] [--json out.json]     # or: mcp-sse bench

Each workload runs as its own process, one after another, so none disturbs another's numbers.
``--quick`` uses small sizes to check the harness (minutes become seconds; the numbers mean little).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

FULL = {
    "push": ["--notifications", "10000", "--repeats", "5"],
    "rpc": ["--seconds", "5", "--sessions", "1,16", "--repeats", "5"],
    "rpc_inprocess": ["--calls", "300", "--sessions", "16", "--repeats", "3"],
    "idle": ["--streams", "1000,5000,10000", "--echoes", "300"],
    "resume": ["--events", "5000", "--repeats", "3"],
    "client_receive": ["--notifications", "5000", "--repeats", "5"],
    "sdk_alone": ["--notifications", "20000", "--seconds", "3", "--repeats", "3"],
    "cluster": ["--seconds", "5", "--repeats", "3", "--notifications", "5000"],
}
QUICK = {
    "push": ["--notifications", "200", "--repeats", "1"],
    "rpc": ["--seconds", "0.5", "--sessions", "1,4", "--repeats", "1"],
    "rpc_inprocess": ["--calls", "5", "--sessions", "4", "--repeats", "1"],
    "idle": ["--streams", "20", "--echoes", "20"],
    "resume": ["--events", "200", "--repeats", "1", "--settle", "0.3"],
    "client_receive": ["--notifications", "200", "--repeats", "1"],
    "sdk_alone": ["--notifications", "200", "--seconds", "0.2", "--repeats", "1"],
    "cluster": ["--seconds", "0.5", "--repeats", "1", "--notifications", "200"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small sizes: checks the harness, not the speed.")
    parser.add_argument("--only", default=",".join(FULL), help="Comma-separated workloads to run.")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    results: dict[str, object] = {}
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only.split(","):
            out = Path(scratch) / f"{name}.json"
            command = [sys.executable, "-m", f"bench.{name}", *plan[name], "--json", str(out)]
            print(f"$ python -m bench.{name} {' '.join(plan[name])}", flush=True)
            done = subprocess.run(command, cwd=root, stderr=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                raise SystemExit(f"bench.{name} failed (exit {done.returncode})")
            results[name] = json.loads(out.read_text())
            print(flush=True)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
