"""Running the `jobworker` command as a separate process, the way a pod runs it."""

import os
import random
import signal
import subprocess
import sys
import time
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


class ReplacingJob:
    """Worker processes kept at `parallelism`, as a Job's controller keeps its pods: a worker killed
    by a signal is replaced by a new one; the job is over when every slot's worker exited on its own.
    """

    SETTLED_SECONDS = 0.5  # a worker this old has started and leased work (kill_one prefers those)

    def __init__(self, args: Sequence[str], env: Mapping[str, str], parallelism: int) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.killed = 0  # workers that died of a signal and were replaced
        self.started: dict[int, float] = {}  # pid -> when it was started
        self.workers = [self._start() for _ in range(parallelism)]

    def _start(self) -> subprocess.Popen:
        worker = start_jobworker(self.args, self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.started[worker.pid] = time.monotonic()
        return worker

    def replace_the_killed(self) -> None:
        for slot, worker in enumerate(self.workers):
            if worker.poll() is not None and worker.returncode < 0:
                self.killed += 1
                self.workers[slot] = self._start()

    def kill_one(self, chance: random.Random) -> None:
        """SIGKILL a running worker picked at random, among those that have had the time to start
        and lease work if there are any (it is replaced at once)."""
        running = [worker for worker in self.workers if worker.poll() is None]
        settled = time.monotonic() - self.SETTLED_SECONDS
        running = [worker for worker in running if self.started[worker.pid] <= settled] or running
        if running:
            victim = chance.choice(running)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        self.replace_the_killed()

    def wait(self, timeout: float) -> list[int]:
        """The exit statuses of the last worker of each slot, replacing killed ones meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            self.replace_the_killed()
            codes = [worker.poll() for worker in self.workers]
            if all(code is not None for code in codes):
                return codes
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the workers did not finish within {timeout:g} s: {codes}")
            time.sleep(0.05)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
