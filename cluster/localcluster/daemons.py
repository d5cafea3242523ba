"""Starting, finding and stopping the cluster's programs.

Each program runs in a session of its own (it outlives `make cluster`), logs to
<state>/logs/<name>.log and leaves its pid in <run>/pids/<name>.pid. A pid counts as the program
only while /proc says it still runs the cluster's binary, so a stale pid file (after a reboot, or
once the machine reused the number) is never mistaken for a running cluster.
"""

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from localcluster.host import ClusterError
from localcluster.layout import Layout

log = logging.getLogger("localcluster")
STOP_SECONDS = 10  # SIGTERM first; SIGKILL after this long


def start(layout: Layout, name: str, argv: list[str]) -> None:
    """Start `argv` (its first word a program of layout.bin) in the background."""
    environment = {
        **os.environ,
        "PATH": f"{layout.bin}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
    }
    with open(layout.logs / f"{name}.log", "ab") as output:
        process = subprocess.Popen(
            [str(layout.program(argv[0])), *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=layout.state,
            start_new_session=True,
        )
    (layout.pids / f"{name}.pid").write_text(str(process.pid))
    log.info("started %s (pid %d)", name, process.pid)


def pid_of(layout: Layout, name: str) -> int | None:
    """The program's pid while it runs this build's binary, else None."""
    try:
        pid = int((layout.pids / f"{name}.pid").read_text())
        executable = Path(f"/proc/{pid}/exe").resolve(strict=True)
    except (OSError, ValueError):
        return None
    return pid if executable.parent == layout.bin.resolve() else None


def stop(layout: Layout, name: str) -> None:
    pid = pid_of(layout, name)
    if pid is not None:
        terminate([pid])
    (layout.pids / f"{name}.pid").unlink(missing_ok=True)


def terminate(pids: list[int], seconds: float = STOP_SECONDS) -> None:
    """SIGTERM, then SIGKILL whatever is still there after `seconds`."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def processes_with(needle: str) -> list[int]:
    """Every process whose command line contains `needle` (e.g. the containerd socket's path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in command_line:
                found.append(int(entry.name))
    return found


def wait_for(
    layout: Layout, what: str, check: Callable[[], bool], seconds: float, log_name: str | None = None
) -> None:
    """Poll `check()` until it is true; past `seconds`, fail with the end of the program's log."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            tail = ""
            if log_name:
                lines = (layout.logs / f"{log_name}.log").read_text(errors="replace").splitlines()
                tail = " | ".join(lines[-5:])
            raise ClusterError(f"{what} did not happen within {seconds:g} s; {log_name or ''} log: {tail}")
        time.sleep(0.5)
