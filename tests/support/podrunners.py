"""Pod runners for the stand-in Job controller (jobcontroller.py).

A pod is its init containers, one after the other, then its main containers together, each a
`Startable`: something that starts as a subprocess.Popen (a local process, or `docker run`). A pod
runs in a thread of its own so that the controller can poll many at once.
"""

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tests.support.jobcontroller import PodResult
from tests.support.rendered import LocalPod, Manifests

ANNOTATION_INDEX = "batch.kubernetes.io/job-completion-index"
STOP_GRACE_SECONDS = 10.0


class Startable(Protocol):
    name: str

    def start(self, **popen: object) -> subprocess.Popen: ...


class ThreadedPod:
    """Runs a pod's containers as the kubelet would, in order, in a background thread."""

    def __init__(self, name: str, index: int | None, init: Sequence[Startable], main: Sequence[Startable]):
        self.name = name
        self.index = index
        self._init = list(init)
        self._main = list(main)
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen] = []
        self._stopping = False
        self._result: PodResult | None = None
        self._thread = threading.Thread(target=self._run, name=f"pod {name}", daemon=True)
        self._thread.start()

    def poll(self) -> PodResult | None:
        return self._result if not self._thread.is_alive() else None

    def terminate(self) -> None:
        with self._lock:
            self._stopping = True
            processes = list(self._processes)
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
        self._thread.join()

    def _spawn(self, containers: Sequence[Startable]) -> list[subprocess.Popen] | None:
        with self._lock:
            if self._stopping:
                return None
            # A session of its own per container: stopping it reaches the programs it started too,
            # which would otherwise keep its output open.
            self._processes = [
                c.start(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
                for c in containers
            ]
            return self._processes

    def _run(self) -> None:
        logs: list[str] = []
        for container in self._init:
            code = self._run_together([container], logs)
            if code is not None:
                self._result = PodResult(self.name, self.index, code[1], code[0], "".join(logs))
                return
        code = self._run_together(self._main, logs)
        failed_container, exit_code = code if code is not None else (self._main[0].name, 0)
        self._result = PodResult(self.name, self.index, exit_code, failed_container, "".join(logs))

    def _run_together(self, containers: Sequence[Startable], logs: list[str]) -> tuple[str, int] | None:
        """Run containers to their end; (name, exit code) of the first that failed, else None."""
        processes = self._spawn(containers)
        if processes is None:
            return (containers[0].name, 143)
        outputs = [process.communicate()[0] for process in processes]
        failure = None
        for container, process, output in zip(containers, processes, outputs, strict=True):
            logs.append(output.decode("utf-8", errors="replace"))
            if process.returncode != 0 and failure is None:
                code = process.returncode if process.returncode > 0 else 128 - process.returncode
                failure = (container.name, code)
        return failure


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


class ProcessPodRunner:
    """Each pod of a rendered Job as local processes (tests/support/rendered.py's LocalPod)."""

    def __init__(
        self,
        manifests: Manifests,
        job: Mapping,
        directory: Path,
        addresses: Mapping[str, str],
        secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.manifests = manifests
        self.job = job
        self.directory = directory
        self.addresses = addresses
        self.secrets = secrets or {}

    def local_pod(self, name: str, index: int | None) -> LocalPod:
        fields = {f"metadata.annotations['{ANNOTATION_INDEX}']": str(index)} if index is not None else {}
        pod = LocalPod(self.manifests, self.job, self.directory / name, addresses=self.addresses,
                       secrets=self.secrets, fields=fields)  # fmt: skip
        if index is not None:  # Kubernetes sets it in every container of an Indexed Job's pod
            for container in [*pod.init_containers, *pod.containers]:
                container.env.setdefault("JOB_COMPLETION_INDEX", str(index))
        return pod

    def start(self, name: str, index: int | None) -> ThreadedPod:
        pod = self.local_pod(name, index)
        return ThreadedPod(name, index, pod.init_containers, pod.containers)
