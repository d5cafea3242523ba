"""Running the `jobworker` command as a separate process, the way a pod runs it."""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

JOBWORKER = [sys.executable, "-m", "jobworker"]


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
