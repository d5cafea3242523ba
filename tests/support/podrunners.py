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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from tests.support.jobcontroller import PodResult
from tests.support.rendered import (
    DockerContainer,
    LocalContainer,
    LocalPod,
    Manifests,
    completion_index_fields,
)

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
        self._running: list[Startable] = []
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
            running = list(zip(self._running, self._processes, strict=True))
        for _, process in running:
            _signal_group(process, signal.SIGTERM)
        for container, process in running:
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                if isinstance(container, DockerContainer):
                    container.remove()
        self._thread.join()

    def _spawn(self, containers: Sequence[Startable]) -> list[subprocess.Popen] | None:
        with self._lock:
            if self._stopping:
                return None
            # A session of its own per container: stopping it reaches the programs it started too,
            # which would otherwise keep its output open.
            self._running = list(containers)
            self._processes = [
                c.start(
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                for c in containers
            ]
            return self._processes

    def _run(self) -> None:
        logs: dict[str, str] = {}
        code = None
        for container in self._init:
            code = self._run_together([container], logs)
            if code is not None:
                break
        else:
            code = self._run_together(self._main, logs)
        failed_container, exit_code = code if code is not None else (self._main[0].name, 0)
        self._result = PodResult(
            self.name, self.index, exit_code, failed_container, "".join(logs.values()), logs
        )

    def _run_together(self, containers: Sequence[Startable], logs: dict[str, str]) -> tuple[str, int] | None:
        """Run containers to their end; (name, exit code) of the first that failed, else None."""
        processes = self._spawn(containers)
        if processes is None:
            return (containers[0].name, 143)
        outputs = [process.communicate()[0] for process in processes]
        failure = None
        for container, process, output in zip(containers, processes, outputs, strict=True):
            logs[container.name] = output.decode("utf-8", errors="replace")
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
        fields = completion_index_fields(index) if index is not None else {}
        return LocalPod(self.manifests, self.job, self.directory / name, addresses=self.addresses,
                        secrets=self.secrets, fields=fields)  # fmt: skip

    def start(self, name: str, index: int | None) -> ThreadedPod:
        pod = self.local_pod(name, index)
        return ThreadedPod(name, index, pod.init_containers, pod.containers)


class DockerPodRunner(ProcessPodRunner):
    """Each pod of a rendered Job as Docker containers of the images it names, on the host network.

    A container whose image is not on this machine (no registry may be reachable) runs as a local
    process instead, and `stand_ins` records which: `make demo` says so in its output.
    """

    def __init__(
        self, *args: object, image_for: Callable[[str], str] = lambda image: image, **kwargs: object
    ):
        super().__init__(*args, **kwargs)
        self.image_for = image_for
        self.stand_ins: set[str] = set()
        self._present: dict[str, bool] = {}

    def start(self, name: str, index: int | None) -> ThreadedPod:
        pod = self.local_pod(name, index)
        docker_init, docker_main = pod.docker_containers(self.image_for)
        init = [self._choose(d, p) for d, p in zip(docker_init, pod.init_containers, strict=True)]
        main = [self._choose(d, p) for d, p in zip(docker_main, pod.containers, strict=True)]
        return ThreadedPod(name, index, init, main)

    def _choose(self, docker: DockerContainer, process: LocalContainer) -> Startable:
        image = self.image_for(docker.image)
        if image not in self._present:
            found = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
            self._present[image] = found.returncode == 0
        if self._present[image]:
            return docker
        self.stand_ins.add(f"{docker.image} (container {docker.name}: {Path(process.argv[0]).name})")
        return process
