"""Logging set-up: text for people, JSON lines for log collectors.

Workers log to stderr so that stdout stays the processed program's own output (`kubectl logs`
then shows what the program printed, as in the Kubernetes docs' examples).
"""

import json
import logging
import re
import sys
import time
from typing import Any

ITEM_PREVIEW_CHARS = 60  # how much of an item a log line shows

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


class TextFormatter(logging.Formatter):
    """One line per record: a message quoting an item, a program's last words or a server's reply
    has its line breaks and other control characters escaped, so that nothing it holds can start
    a line of its own (forge a log line). A traceback, the one multi-line record, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


def setup_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Send the package's logs to stderr in the chosen format (`text` or `json`)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("jobworker")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def mask_url(url: str) -> str:
    """A URL as messages may show it: the password of its user part replaced by ***.

    It works on text that does not parse as a URL too (a bad port, a bad query), which is when a
    message quotes it: the user part runs from "://" to the last "@" before the host.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}:***@{host}" if colon else url


def url_problem(url: str, message: str) -> str:
    """A parser's message about `url`, unless it quotes part of the URL's password (a password with
    an unencoded / or @ is read as a port or a host, and the message names what it read)."""
    _scheme, sep, rest = url.partition("://")
    userinfo = rest.rpartition("@")[0] if sep else ""
    password = userinfo.partition(":")[2]
    pieces = [piece for piece in re.split(r"[/?#@:\[\]]", password) if len(piece) >= 2]
    if any(piece in message for piece in pieces):
        return "it does not parse (in a password, / ? # @ : [ ] must be percent-encoded)"
    return message


def one_line(text: str) -> str:
    """`text` with every character that is not printable (line breaks, tabs, escape sequences,
    Unicode's line and paragraph separators, lone surrogates) written as its Python escape, so that
    it stays on one line and cannot drive a terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def preview(item: bytes, limit: int = ITEM_PREVIEW_CHARS) -> str:
    """A short, printable rendering of an item for log lines (items may be any bytes), on one line."""
    text = item[:limit].decode("utf-8", errors="backslashreplace")
    return one_line(text) + ("…" if len(item) > limit else "")
