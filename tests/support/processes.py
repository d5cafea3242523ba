"""Running the `jobworker` command as a separate process, the way a pod runs it."""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

JOBWORKER = [sys.executable, "-m", "jobworker"]
REPO_ROOT = Path(__file__).resolve().parents[2]


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any of the worker's own variables, plus `extra`."""
    own = {
        "REDIS_URL",
        "REDIS_PASSWORD",
        "QUEUE_NAME",
        "AMQP_URL",
        "AMQP_USERNAME",
        "AMQP_PASSWORD",
        "HANDLER",
        "ITEM_DELIVERY",
        "WORK_ITEM",
        "JOB_COMPLETION_INDEX",
        "ITEMS_FILE",
    }
    env = {key: value for key, value in os.environ.items() if key not in own}
    env["PYTHONPATH"] = str(REPO_ROOT)  # so that --handler tests.support.handlers:... imports
    env.update(extra or {})
    return env


def run_jobworker(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*JOBWORKER, *args],
        env=worker_env(env),
        capture_output=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )


def start_jobworker(
    args: Sequence[str], env: Mapping[str, str] | None = None, **popen: object
) -> subprocess.Popen:
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen([*JOBWORKER, *args], env=worker_env(env), **popen)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The one line a refused run prints on stderr: no traceback, and the program never ran."""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    assert result.stdout == b"", result.stdout
    return lines[0]
