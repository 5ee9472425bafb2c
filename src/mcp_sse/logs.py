"""Log output for operators: readable text by default, or one JSON object per line (``--log-format
json``) with the session and request ids as fields a log pipeline can index, not words in a sentence.

Call sites add the fields with ``extra=fields(session_id=..., ...)``; in text mode they are
simply not shown beyond the message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = ["FIELDS", "JSONFormatter", "LogFormat", "configure", "fields"]

LogFormat = Literal["text", "json"]

FIELDS = ("session_id", "request_id", "stream", "transport", "status", "reason", "client", "pid")


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call: structured fields, ignored by the text format."""
    return {key: value for key, value in values.items() if value is not None}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, log_format: LogFormat) -> None:
    """Root logging for the command line: our logs, the SDK's and uvicorn's, one format."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
