"""Any SDK server factory of the tests (``module:function``) over stdio, as a separate process: what a
test puts behind ``serve --`` when it needs that server's tools and no others."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    module, _, factory = sys.argv[1].partition(":")
    getattr(importlib.import_module(module), factory)().run("stdio")


if __name__ == "__main__":
    main()
