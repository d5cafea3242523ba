"""The Indexed Job worker: the pod's completion index picks its item; there is no queue.

Kubernetes gives each pod of an Indexed Job its index in $JOB_COMPLETION_INDEX and in the pod
annotation batch.kubernetes.io/job-completion-index, which the downward API can mount as a file.
The worker reads the index, maps it to the item at that position of an items file, and runs the
user's unmodified program once. The exit status is the program's own, so that the Job's
backoffLimitPerIndex retries the index and a podFailurePolicy can match the program's exit codes.
Without an items file the program gets the index itself (the docs' frame-rendering use).

The init-container variant writes the item to a file in a shared volume instead (`--write-item`),
so that a container of any image, without this worker, can read it.
"""

import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from jobworker.constants import (
    ENV_INDEX_FILE,
    ENV_ITEMS_FILE,
    ENV_JOB_COMPLETION_INDEX,
    PLACEHOLDER_INDEX,
    PLACEHOLDER_ITEM,
    PLACEHOLDER_ITEM_FILE,
    ExitCode,
)
from jobworker.errors import JobWorkerError, UsageError
from jobworker.items import ItemsFormat, read_items
from jobworker.logs import preview
from jobworker.runner import CommandRunner, ItemDelivery, Outcome, describe_status
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)

_DECIMAL = re.compile(r"[0-9]+")  # ASCII only: int() would also take "٣", "+3" and "3_0"
WRITTEN_ITEM_MODE = 0o644  # the main container may run as another user than the init container


class CompletionIndex(NamedTuple):
    """The index and where it came from, for log lines and error messages."""

    value: int
    source: str


def parse_index(text: str, source: str, exit_code: ExitCode = ExitCode.ERROR) -> CompletionIndex:
    """A completion index is a non-negative decimal integer; surrounding whitespace is allowed."""
    stripped = text.strip()
    if not stripped:
        raise JobWorkerError(f"{source} is empty: expected a completion index (0, 1, 2, ...)", exit_code)
    if stripped.startswith("-") and _DECIMAL.fullmatch(stripped[1:]):
        raise JobWorkerError(f"{source} is negative ({stripped}): a completion index is 0 or more", exit_code)
    if not _DECIMAL.fullmatch(stripped):
        shown = stripped if len(stripped) <= 40 else stripped[:40] + "…"
        raise JobWorkerError(
            f"{source} is not a completion index: {shown!r} (expected 0, 1, 2, ...)", exit_code
        )
    return CompletionIndex(int(stripped), source)


def resolve_index(option: str | None, index_file: str | None, environ: Mapping[str, str]) -> CompletionIndex:
    """The index from --index, else from the index file, else from $JOB_COMPLETION_INDEX.

    --index is for runs outside Kubernetes. The file comes before the variable because a pod that
    mounts it asked for it explicitly; in an Indexed Job both hold the same number anyway.
    """
    if option is not None:
        return parse_index(option, "--index", ExitCode.USAGE)
    if index_file:
        source = f"index file {index_file}"
        try:
            text = Path(index_file).read_bytes().decode("utf-8", errors="replace")
        except OSError as error:
            raise JobWorkerError(f"cannot read {source}: {error.strerror}") from None
        return parse_index(text, source)
    if ENV_JOB_COMPLETION_INDEX in environ:
        return parse_index(environ[ENV_JOB_COMPLETION_INDEX], f"${ENV_JOB_COMPLETION_INDEX}")
    raise JobWorkerError(
        f"no completion index: ${ENV_JOB_COMPLETION_INDEX} is not set (Kubernetes sets it in Indexed Jobs); "
        f"give --index-file (env {ENV_INDEX_FILE}) or --index"
    )


def select_item(items_file: str, items_format: ItemsFormat, index: CompletionIndex) -> bytes:
    """The item at the index's position; an index past the end is an error, never an empty item."""
    items = read_items(items_file, items_format)
    if index.value >= len(items):
        held = f"holds {len(items)} items (indexes 0 to {len(items) - 1})" if items else "holds no items"
        raise JobWorkerError(
            f"index {index.value} (from {index.source}) is past the end of items file {items_file}, "
            f"which {held}: does the Job's completions match the number of items?"
        )
    return items[index.value]


def write_item(item: bytes, path: str) -> None:
    """Write the item, byte for byte, to `path` at once: readers see the whole item or no file."""
    target = Path(path)
    if target.is_dir():
        raise JobWorkerError(f"cannot write the item to {path}: it is a directory; give a file path")
    try:
        handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise JobWorkerError(f"cannot write the item to {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(item)
        os.chmod(partial, WRITTEN_ITEM_MODE)
        os.replace(partial, target)
    except OSError as error:
        Path(partial).unlink(missing_ok=True)
        raise JobWorkerError(f"cannot write the item to {path}: {error.strerror}") from None


def check_delivery(command: Sequence[str], delivery: ItemDelivery, has_items: bool) -> None:
    """Without an items file there is no item: a command that asks for one is a mistake."""
    if has_items:
        return
    wanted = [p for p in (PLACEHOLDER_ITEM, PLACEHOLDER_ITEM_FILE) if any(p in arg for arg in command)]
    if wanted:
        raise UsageError(
            f"the command uses {wanted[0]} but no items file is given (--items-file / env "
            f"{ENV_ITEMS_FILE}); without one the command gets only {PLACEHOLDER_INDEX} and "
            f"${ENV_JOB_COMPLETION_INDEX}"
        )
    if delivery is not ItemDelivery.AUTO:
        raise UsageError(
            f"item delivery {delivery!s} needs an items file (--items-file / env {ENV_ITEMS_FILE})"
        )


def exit_status(outcome: Outcome) -> int:
    """The program's status as a shell reports it: its exit code, or 128 + the signal that ended it."""
    if outcome.returncode is None:
        return ExitCode.ERROR
    if outcome.returncode < 0:
        return 128 + (-outcome.returncode)
    return outcome.returncode


def run_command(
    command: Sequence[str],
    delivery: ItemDelivery,
    index: CompletionIndex,
    item: bytes | None,
    items_file: str | None,
) -> int:
    """Run the program once for this index and return its exit status.

    A SIGTERM to the worker (pod deletion) is passed on to the program's process group at once, as
    if the program were the container's first process, and the program gets what is left of the
    pod's terminationGracePeriodSeconds (the kubelet's SIGKILL ends it); there is no queue to hand
    the item back to, the Job itself runs the index again.
    """
    stop = StopRequest()
    runner = CommandRunner(command, delivery, stop, grace_seconds=0.0, kill_after=None)
    stop.install()
    shown = f"item {preview(item)!r} from {items_file}" if item is not None else "no items file"
    log.info("index %d (from %s), %s: running %s", index.value, index.source, shown, command[0])
    outcome = runner.run(
        item,
        substitutions={PLACEHOLDER_INDEX: str(index.value).encode()},
        env={ENV_JOB_COMPLETION_INDEX: str(index.value)},
    )
    status = exit_status(outcome)
    if outcome.returncode is None:
        log.error("index %d: %s", index.value, outcome.error)
    elif outcome.returncode < 0:
        reason = describe_status(outcome.returncode)
        log.warning("index %d: %s was %s: exit status %d", index.value, command[0], reason, status)
    elif status != 0:
        log.warning("index %d: %s ended with exit status %d", index.value, command[0], status)
    return status
