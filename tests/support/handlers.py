"""Handlers for `jobworker fine --handler` in tests: they record what they processed.

Each processed item is appended to the file named by RECORD_FILE as one write of a length-prefixed
record, so records from concurrent workers never interleave and items may hold any bytes.
"""

import os
import signal
import struct
import time
from pathlib import Path


def _append(item: bytes) -> None:
    fd = os.open(os.environ["RECORD_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, struct.pack(">I", len(item)) + item)
    finally:
        os.close(fd)


def record(item: bytes) -> None:
    _append(item)


def slow_record(item: bytes) -> None:
    """Takes SLEEP_SECONDS per item, so that workers can be killed in the middle of a batch."""
    time.sleep(float(os.environ.get("SLEEP_SECONDS", "0.001")))
    _append(item)


def fail_bad(item: bytes) -> None:
    """Fails every item that starts with b"bad", records the others."""
    if item.startswith(b"bad"):
        raise ValueError(f"refusing {item!r}")
    _append(item)


def record_or_die(item: bytes) -> None:
    """Records every item; an item starting with b"poison" then kills its own worker (SIGKILL), as an
    item that crashes the interpreter or makes the pod run out of memory would."""
    _append(item)
    if item.startswith(b"poison"):
        os.kill(os.getpid(), signal.SIGKILL)


def record_or_hang(item: bytes) -> None:
    """Records every item; an item starting with b"hang" then runs for ten minutes."""
    _append(item)
    if item.startswith(b"hang"):
        time.sleep(600)


def raise_base_exceptions(item: bytes) -> None:
    """Raises SystemExit(7) for b"exit-7", KeyboardInterrupt for b"interrupt"; records the others."""
    if item == b"exit-7":
        raise SystemExit(7)
    if item == b"interrupt":
        raise KeyboardInterrupt
    _append(item)


def read_records(path: Path) -> list[bytes]:
    """The items recorded in `path`, in the order they were processed."""
    data = path.read_bytes() if path.exists() else b""
    items, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        items.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return items
