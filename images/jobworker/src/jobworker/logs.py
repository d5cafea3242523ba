"""Logging set-up: text for people, JSON lines for log collectors.

Workers log to stderr so that stdout stays the processed program's own output (`kubectl logs`
then shows what the program printed, as in the Kubernetes docs' examples).
"""

import json
import logging
import sys
import time
from typing import Any

from jobworker.constants import ITEM_PREVIEW_CHARS

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the `extra=` fields of the call as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Send the package's logs to stderr in the chosen format (`text` or `json`)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("jobworker")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def preview(item: bytes, limit: int = ITEM_PREVIEW_CHARS) -> str:
    """A short, printable rendering of an item for log lines (items may be any bytes)."""
    text = item[:limit].decode("utf-8", errors="backslashreplace")
    return text + ("…" if len(item) > limit else "")
