"""Logs of `gitcanary run`: text for people on a terminal, one JSON object per line elsewhere.

Each JSON line has `time`, `level`, `logger`, `message`, and whatever the call passed in `extra`
(`canary`, `commit`, `action`...). Secrets never reach a line: credentials in URLs (a repository
`https://user:token@host/...`), token-like query parameters and Authorization headers are masked
in the message and in every extra field, whichever module logged them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from gitcanary.redaction import redact

FORMATS = ("json", "text")


def chosen(log_format: str, stream: TextIO) -> str:
    """`auto` made concrete: text when `stream` is a terminal (a person reads it), else json
    (a pod's log, a file, a pipe to a collector); any other value is returned as given."""
    if log_format != "auto":
        return log_format
    return "text" if stream.isatty() else "json"


# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if "exc_info" in entry:
            del entry["exc_info"]
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(log_format: str, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Route every `gitcanary*` logger (and libraries') to `stream` in `log_format`."""
    if log_format not in FORMATS:
        raise ValueError(f"--log-format {log_format!r}: expected auto, {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Libraries' own lines drown the tick's news: httpx logs every request (URL-encoded PromQL
    # included) at INFO, apscheduler every job run at INFO and a skipped overlapping tick ("maximum
    # number of running instances reached") as a WARNING that only says a tick ran long. -v shows all.
    quiet = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "apscheduler": logging.ERROR}
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else level)
