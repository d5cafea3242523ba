"""Running the user's program for one item.

The program is unmodified: it receives the item on stdin, in $WORK_ITEM, in place of `{item}` in
its arguments, or as the path `{item_file}` of a temporary file holding it. Its stdout is left
alone (it is the program's output, which `kubectl logs` shows); its stderr is passed through and
the end of it kept, so that a failed item is recorded with the program's own last words.

The program runs in a process group of its own, and the worker alone decides when it stops:
- a signal sent to the worker's whole group (Ctrl-C in a terminal, `timeout`, a supervisor) does
  not reach it: the worker stops on it as on SIGTERM, and the program may finish within the grace
  period. A program that dies of the very signal that is stopping the worker (sent to it by
  whoever signalled the worker) was stopped, not failed: its item goes back uncharged.
- at the end of the grace period its whole group gets SIGTERM, and SIGKILL `kill_after` seconds
  later: children and grandchildren that hold its pipes open cannot keep the worker past it.
- when it exits, whatever it left running in its group is killed: an item's processes end with it.

The program's environment is the worker's without the broker's credentials and URLs
(ENV_WITHHELD_FROM_PROGRAM): the program handles untrusted items and needs none of them.
"""

import collections
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import IO, NamedTuple

from jobworker.constants import (
    ENV_WITHHELD_FROM_PROGRAM,
    ENV_WORK_ITEM,
    KILL_AFTER_TERM_SECONDS,
    PLACEHOLDER_ITEM,
    PLACEHOLDER_ITEM_FILE,
)
from jobworker.errors import JobWorkerError, UsageError
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 1024  # how much of a failed program's stderr is kept with the item
# After the program ended and its process group was killed, how long its pipes may take to close;
# a process that left the group (setsid) may hold them for ever: the worker does not wait for it.
PIPES_CLOSE_SECONDS = 2.0


class ItemDelivery(StrEnum):
    """How the item reaches the program."""

    AUTO = "auto"  # {item} or {item_file} in the arguments if present, else stdin
    STDIN = "stdin"
    ENV = "env"
    ARG = "arg"
    FILE = "file"


class Outcome(NamedTuple):
    """What became of one run: success, a failure with its reason, or an interruption by a stop."""

    ok: bool
    error: str = ""
    returncode: int | None = None
    interrupted: bool = False  # stopped by us on SIGTERM: hand the item back, it did not fail


def check_command(argv: Sequence[str]) -> None:
    """Fail before any item is leased when the program cannot possibly run."""
    if not argv or not argv[0].strip():
        raise UsageError("no command given: put the program and its arguments after --")
    if shutil.which(argv[0]) is None:
        raise JobWorkerError(f"command not found: {argv[0]}")


def resolve_delivery(requested: ItemDelivery, argv: Sequence[str]) -> ItemDelivery:
    """Turn `auto` into a concrete mode and check that the arguments fit the mode asked for."""
    has_item = any(PLACEHOLDER_ITEM in arg for arg in argv)
    has_item_file = any(PLACEHOLDER_ITEM_FILE in arg for arg in argv)
    if requested is ItemDelivery.AUTO:
        if has_item:
            return ItemDelivery.ARG
        return ItemDelivery.FILE if has_item_file else ItemDelivery.STDIN
    if requested is ItemDelivery.ARG and not has_item:
        raise UsageError(f"item delivery 'arg' needs {PLACEHOLDER_ITEM} in the command's arguments")
    if requested is ItemDelivery.FILE and not has_item_file:
        raise UsageError(f"item delivery 'file' needs {PLACEHOLDER_ITEM_FILE} in the command's arguments")
    return requested


def describe_status(returncode: int) -> str:
    if returncode < 0:
        return f"killed by signal {returncode * -1}"
    return f"exit status {returncode}"


class CommandRunner:
    """Runs one program per item, handing it back unfinished when a stop outlasts the grace period."""

    def __init__(
        self,
        argv: Sequence[str],
        delivery: ItemDelivery,
        stop: StopRequest | None = None,
        grace_seconds: float = 0.0,
        kill_after: float | None = KILL_AFTER_TERM_SECONDS,
    ) -> None:
        self.argv = [os.fsencode(arg) for arg in argv]
        self.delivery = resolve_delivery(delivery, argv)
        self.stop = stop
        self.grace_seconds = grace_seconds
        self.kill_after = kill_after  # after the SIGTERM past the grace period; None: never SIGKILL

    def run(
        self,
        item: bytes | None,
        substitutions: Mapping[str, bytes] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Run the program once; `item` None runs it without an item (an Indexed Job by index)."""
        values = {os.fsencode(key): value for key, value in (substitutions or {}).items()}
        withheld = {os.fsencode(name) for name in ENV_WITHHELD_FROM_PROGRAM}
        child_env = {key: value for key, value in os.environb.items() if key not in withheld}
        child_env.update({os.fsencode(k): os.fsencode(v) for k, v in (env or {}).items()})
        stdin_data: bytes | None = None
        with contextlib.ExitStack() as cleanup:
            if item is not None:
                if b"\0" in item and self.delivery in (ItemDelivery.ARG, ItemDelivery.ENV):
                    return Outcome(
                        ok=False, error=f"item holds a NUL byte, which {self.delivery} cannot pass"
                    )
                if self.delivery is ItemDelivery.STDIN:
                    stdin_data = item
                elif self.delivery is ItemDelivery.ENV:
                    child_env[ENV_WORK_ITEM.encode()] = item
                elif self.delivery is ItemDelivery.ARG:
                    values[PLACEHOLDER_ITEM.encode()] = item
                else:
                    values[PLACEHOLDER_ITEM_FILE.encode()] = self._write_item_file(item, cleanup)
            argv = [_substitute(arg, values) for arg in self.argv]
            return self._execute(argv, child_env, stdin_data)

    @staticmethod
    def _write_item_file(item: bytes, cleanup: contextlib.ExitStack) -> bytes:
        handle, path = tempfile.mkstemp(prefix="item-")
        cleanup.callback(os.unlink, path)
        with os.fdopen(handle, "wb") as file:
            file.write(item)
        return os.fsencode(path)

    def _execute(self, argv: list[bytes], env: dict[bytes, bytes], stdin_data: bytes | None) -> Outcome:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                process_group=0,  # a group of its own: see the module docstring
            )
        except OSError as error:
            return Outcome(ok=False, error=f"cannot start {os.fsdecode(argv[0])}: {error.strerror}")
        finished = threading.Event()
        interrupted = threading.Event()
        tail: collections.deque[bytes] = collections.deque()
        pipes = [threading.Thread(target=_pass_stderr, args=(process.stderr, tail), daemon=True)]
        if stdin_data is not None:
            pipes.append(threading.Thread(target=_feed_stdin, args=(process.stdin, stdin_data), daemon=True))
        watcher = None
        if self.stop is not None:
            watcher = threading.Thread(
                target=self._watch_stop, args=(self.stop, process, finished, interrupted), daemon=True
            )
        for helper in [*pipes, watcher]:
            if helper is not None:
                helper.start()
        returncode = process.wait()
        finished.set()
        if watcher is not None:
            watcher.join()
        _signal_group(process.pid, signal.SIGKILL)  # what it left running ends with it
        deadline = time.monotonic() + PIPES_CLOSE_SECONDS
        for helper in pipes:
            helper.join(max(deadline - time.monotonic(), 0.0))
        if any(helper.is_alive() for helper in pipes):
            log.warning(
                "%s exited but a process it started outside its process group keeps its pipes open; "
                "not waiting for it",
                os.fsdecode(argv[0]),
            )
        if interrupted.is_set() or self._stopped_by_our_signal(returncode):
            return Outcome(
                ok=False, error="interrupted by a stop request", returncode=returncode, interrupted=True
            )
        if returncode == 0:
            return Outcome(ok=True, returncode=0)
        last_words = b"".join(tail)[-STDERR_TAIL_BYTES:].decode("utf-8", errors="backslashreplace").strip()
        error = describe_status(returncode) + (f": {last_words}" if last_words else "")
        return Outcome(ok=False, error=error, returncode=returncode)

    def _stopped_by_our_signal(self, returncode: int) -> bool:
        """The program died of the signal that is stopping the worker (sent to both, by a supervisor
        or a terminal): it was stopped, not failed. A shell reports such a death as 128 + N."""
        stop = self.stop
        if stop is None or not stop.requested or stop.signum is None:
            return False
        return returncode in (-stop.signum, 128 + stop.signum)

    def _watch_stop(
        self,
        stop: StopRequest,
        process: subprocess.Popen,
        finished: threading.Event,
        interrupted: threading.Event,
    ) -> None:
        """On a stop, let the program finish within the grace period, then end its process group."""
        while not finished.wait(0.1):
            if stop.requested:
                break
        else:
            return
        remaining = stop.raised_at + self.grace_seconds - time.monotonic()
        if finished.wait(max(remaining, 0.0)):
            return
        if self.grace_seconds:
            log.warning("the program outlived the grace period after %s; stopping it", stop.signal_name)
        interrupted.set()
        _signal_group(process.pid, signal.SIGTERM)
        if self.kill_after is not None and not finished.wait(self.kill_after):
            log.warning("the program is still running %g s after SIGTERM; killing it", self.kill_after)
            _signal_group(process.pid, signal.SIGKILL)


def _signal_group(group: int, signum: signal.Signals) -> None:
    """Send a signal to every process of a program's process group; none left is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _substitute(arg: bytes, values: Mapping[bytes, bytes]) -> bytes:
    for placeholder, value in values.items():
        arg = arg.replace(placeholder, value)
    return arg


def _feed_stdin(stream: IO[bytes], data: bytes) -> None:
    """Write the item and close stdin; a program that does not read it is not an error."""
    with contextlib.suppress(OSError):
        stream.write(data)
    with contextlib.suppress(OSError):
        stream.close()


def _pass_stderr(stream: IO[bytes], tail: collections.deque[bytes]) -> None:
    """Copy the program's stderr to ours as it comes, keeping the last STDERR_TAIL_BYTES."""
    kept = 0
    for chunk in iter(lambda: stream.read1(65536), b""):
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()
        tail.append(chunk)
        kept += len(chunk)
        while kept - len(tail[0]) >= STDERR_TAIL_BYTES:
            kept -= len(tail.popleft())
    stream.close()
