"""Logging set up the same way in every process, in one of two formats
(LOG_FORMAT):

- `text`: one readable line per record, `12:00:01 INFO    services.x: message`;
- `json`: one JSON object per line, for a log collector:

      {"time": "2026-11-27T10:00:03.123Z", "level": "INFO", "logger": "services.x",
       "message": "...", "exception": "Traceback ...", "import_id": "42"}

  `exception` appears when the record carries one; the fields a call gives
  with `extra=` follow when JSON can hold them (others are left out).
"""

from __future__ import annotations

import json
import logging
import sys
import time

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FORMATS = ("text", "json")

# What every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key in _RECORD_FIELDS or key in out:
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            out[key] = value
        return json.dumps(out, ensure_ascii=False)


def formatter(log_format: str = "text") -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(FORMAT, datefmt="%H:%M:%S")
    raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")


def setup_logging(level: str = "INFO", stream=None, log_format: str = "text") -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kombu", "amqp", "nameko", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
