"""Reading work items from files: one item per line, or a JSON array.

The charts render `items` from values as a JSON array (any string survives, newlines included) and
`itemsFile` as text with one item per line; the workers accept both, so the same file feeds
`jobworker seed` and `jobworker indexed`.
"""

import json
import struct
import sys
from collections.abc import Sequence
from typing import Literal

from jobworker.errors import JobWorkerError

ItemsFormat = Literal["auto", "lines", "json"]
ITEMS_FORMATS: tuple[ItemsFormat, ...] = ("auto", "lines", "json")


def parse_lines(data: bytes) -> list[bytes]:
    """One item per line; blank lines are skipped and a trailing CR is dropped (files from Windows)."""
    items = []
    for line in data.split(b"\n"):
        item = line.removesuffix(b"\r")
        if item:
            items.append(item)
    return items


def parse_json(data: bytes, source: str) -> list[bytes]:
    """A JSON array of strings or numbers. A number is its text in the file, as Helm rendered it
    (1e-7, 0.000001): what indexed-job's init container writes for it too, with no Python to
    format it again."""
    try:
        value = json.loads(data, parse_int=str, parse_float=str, parse_constant=str)
    except ValueError as error:
        raise JobWorkerError(f"{source}: not valid JSON: {error}") from None
    if not isinstance(value, list):
        raise JobWorkerError(f"{source}: expected a JSON array of items, got {type(value).__name__}")
    items = []
    for position, entry in enumerate(value):
        if isinstance(entry, str):
            try:
                items.append(entry.encode())
            except UnicodeEncodeError as error:
                # JSON's \ud800 escapes can spell a lone surrogate, which no UTF-8 item holds.
                raise JobWorkerError(
                    f"{source}: item {position} is not valid Unicode text: {error.reason} "
                    f"(\\u{ord(entry[error.start]):04x} at character {error.start})"
                ) from None
        else:
            raise JobWorkerError(
                f"{source}: item {position} is {type(entry).__name__}; items must be strings or numbers"
            )
    return items


def read_items(path: str, items_format: ItemsFormat = "auto") -> list[bytes]:
    """Read every item of a file (`-` is stdin). `auto` means JSON when the name ends in .json."""
    source = "stdin" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as file:
                data = file.read()
    except OSError as error:
        raise JobWorkerError(f"cannot read items file {source}: {error.strerror}") from None
    if items_format == "json" or (items_format == "auto" and path.endswith(".json")):
        return parse_json(data, source)
    return parse_lines(data)


def items_digest(items: Sequence[bytes], prefix: bytes = b"") -> str:
    """Identifies a list of items, order and boundaries included, so that a retried seed is
    recognised; `prefix` mixes in what else makes two seeds different (a chunk size, say)."""
    # Imported here, where seeding needs it: every coarse pod, which seeds nothing, would load
    # OpenSSL's hashes on its way to its one item.
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256(prefix)
    for item in items:
        digest.update(struct.pack(">Q", len(item)))
        digest.update(item)
    return digest.hexdigest()
