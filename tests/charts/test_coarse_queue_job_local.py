"""coarse-queue-job's pods, run from the rendered manifests as local processes against a real RabbitMQ.

The seed and worker containers' command, args and environment are taken from `helm template`: the
user and password from the rendered Secret (the test creates that user on the broker, as the
rabbitmq chart's node does at its first boot), the items from the rendered ConfigMap, the RabbitMQ
Service's name mapped to a local rabbitmq-server. Nothing is re-typed by the test, so a chart that
renders a wrong variable, path or argument fails here.

The rendered Job runs under the stand-in Job controller (tests/support/jobcontroller.py), which
reads completions, parallelism, backoffLimit and the pod failure policy from it.
"""

import collections
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobworker.constants import ExitCode
from tests.support.helm import Helm, chart_path
from tests.support.jobcontroller import JobController, JobOutcome, PodResult
from tests.support.podrunners import ProcessPodRunner
from tests.support.processes import JOBWORKER, run_jobworker
from tests.support.rendered import LocalPod, Manifests
from tests.support.servers import RabbitServer

CHART = chart_path("coarse-queue-job")
# The Kubernetes docs' example items.
FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon"]
# As in the docs, the program reads its item on stdin.
PROGRAM = ["sh", "-c", 'printf "processed %s\\n" "$(cat -)"']
POISON = ["sh", "-c", 'item=$(cat -); [ "$item" != poison ] || exit 1; printf "processed %s\\n" "$item"']
TIMEOUT = 120


@dataclass
class Release:
    """One rendered release, its names, and the broker its Service stands for."""

    manifests: Manifests
    name: str
    broker: RabbitServer

    @property
    def rabbitmq(self) -> str:
        return f"{self.name}-rabbitmq"

    @property
    def queue(self) -> str:
        return f"{self.name}-coarse-queue-job"

    @property
    def job(self) -> dict:
        return self.manifests.get("Job")

    def pod(self, directory: Path) -> LocalPod:
        addresses = {self.rabbitmq: f"127.0.0.1:{self.broker.port}"}
        return LocalPod(self.manifests, self.job, directory, addresses=addresses)


def install(helm: Helm, broker: RabbitServer, values: dict) -> Release:
    """Render the chart under a release name of its own (so its queue is its own on the shared
    broker) and give the broker the user of the rendered Secret."""
    name = f"t{uuid.uuid4().hex[:8]}"
    manifests = helm.template(CHART, values, release=name)
    release = Release(manifests, name, broker)
    credentials = manifests.secret_data(release.rabbitmq)
    broker.add_user(credentials["rabbitmq-username"], credentials["rabbitmq-password"])
    return release


@pytest.fixture
def fruit(helm4: Helm, rabbit_server: RabbitServer) -> Release:
    return install(helm4, rabbit_server, {"items": FRUITS, "command": PROGRAM, "parallelism": 2})


def run_job(release: Release, directory: Path) -> JobOutcome:
    addresses = {release.rabbitmq: f"127.0.0.1:{release.broker.port}"}
    return JobController(
        release.job, ProcessPodRunner(release.manifests, release.job, directory, addresses)
    ).run()


def run_pod(release: Release, directory: Path, name: str) -> PodResult:
    """One pod outside any Job: its seed container, then its worker."""
    addresses = {release.rabbitmq: f"127.0.0.1:{release.broker.port}"}
    pod = ProcessPodRunner(release.manifests, release.job, directory, addresses).start(name, None)
    while (result := pod.poll()) is None:
        time.sleep(0.05)
    return result


def processed(pods: list[PodResult]) -> collections.Counter:
    """How often each item was processed, from the programs' "processed ITEM" lines."""
    return collections.Counter(item for pod in pods for item in processed_by(pod))


def processed_by(pod: PodResult) -> list[str]:
    return [
        line.removeprefix("processed ") for line in pod.logs.splitlines() if line.startswith("processed ")
    ]


def queue_status(release: Release, directory: Path) -> dict:
    """`jobworker status --json` with the worker container's own environment."""
    env = release.pod(directory).container("worker").env
    status = run_jobworker(["status", "--json"], env=env)
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)


def test_rendered_containers_resolve_to_local_processes(fruit: Release, tmp_path: Path):
    pod = fruit.pod(tmp_path / "pod")
    seed, worker = pod.container("seed"), pod.container("worker")
    items_file = tmp_path / "pod" / "volumes" / "items" / "items.json"
    assert seed.argv == [*JOBWORKER, "seed", "--file", str(items_file)]
    assert json.loads(items_file.read_text()) == FRUITS
    assert worker.argv == [*JOBWORKER, "coarse", "--", *PROGRAM], "ENTRYPOINT + args"
    credentials = fruit.manifests.secret_data(fruit.rabbitmq)
    for container in (seed, worker):
        assert container.env["AMQP_URL"] == f"amqp://127.0.0.1:{fruit.broker.port}/%2F"
        assert container.env["AMQP_USERNAME"] == credentials["rabbitmq-username"]
        assert container.env["AMQP_PASSWORD"] == credentials["rabbitmq-password"]
        assert container.env["QUEUE_NAME"] == fruit.queue
        assert container.env["TMPDIR"] == str(tmp_path / "pod" / "volumes" / "tmp")


def test_the_docs_items_one_per_process(fruit: Release, tmp_path: Path):
    """completions (8) worker processes, 2 at a time, each with its own seed first (the first two
    seed together): every one exits 0, each item is processed exactly once, by one process each."""
    spec = fruit.job["spec"]
    assert (spec["completions"], spec["parallelism"]) == (len(FRUITS), 2)

    outcome = run_job(fruit, tmp_path)

    assert outcome.succeeded, [pod.logs for pod in outcome.pods if not pod.succeeded]
    assert [pod.exit_code for pod in outcome.pods] == [0] * len(FRUITS)
    assert processed(outcome.pods) == collections.Counter(FRUITS)
    assert all(len(processed_by(pod)) == 1 for pod in outcome.pods), "one item per process"
    logs = [pod.logs for pod in outcome.pods]
    assert sum(f"published {len(FRUITS)} items" in log for log in logs) == 1, logs
    assert sum(f"already holds these {len(FRUITS)} items" in log for log in logs) == len(FRUITS) - 1
    status = queue_status(fruit, tmp_path / "status")
    assert (status["ready"], status["consumers"], status["failed"]) == (0, 0, 0), status


def test_pods_seeding_at_the_same_moment_publish_the_items_once(fruit: Release, tmp_path: Path):
    """Four pods start together, as the Job controller starts `parallelism` pods: their seed
    containers race, the exclusive lock queue serialises them, and the queue holds each item once."""
    seeds = [fruit.pod(tmp_path / f"pod-{n}").container("seed") for n in range(4)]
    started = [seed.start() for seed in seeds]
    results = [(process.wait(TIMEOUT), process.stderr.read().decode()) for process in started]
    for process in started:
        process.stdout.close()
        process.stderr.close()
    assert [code for code, _ in results] == [0] * 4, results
    assert sum(f"published {len(FRUITS)} items" in err for _, err in results) == 1, results
    assert queue_status(fruit, tmp_path / "status")["ready"] == len(FRUITS)


def test_a_failing_item_takes_a_new_pod_per_attempt_then_is_dead_lettered(
    helm4: Helm, rabbit_server: RabbitServer, tmp_path: Path
):
    """maxAttempts 2: the poison item's first pod exits 5 (counted, replaced), its second moves it
    to QUEUE.failed and exits 0, so the Job still gets one completion per item."""
    items = ["apple", "poison", "banana"]
    release = install(helm4, rabbit_server, {"items": items, "command": POISON, "maxAttempts": 2})
    spec = release.job["spec"]
    assert spec["backoffLimit"] == len(items) * (2 - 1) + 6

    outcome = run_job(release, tmp_path)

    assert outcome.succeeded
    codes = collections.Counter(pod.exit_code for pod in outcome.pods)
    assert codes == {ExitCode.OK: len(items), ExitCode.ITEM_REQUEUED: 1}, [pod.logs for pod in outcome.pods]
    assert processed(outcome.pods) == collections.Counter(["apple", "banana"])
    status = queue_status(release, tmp_path / "status")
    assert (status["ready"], status["failed"]) == (0, 1), status


def test_a_pod_beyond_the_messages_exits_with_no_work(
    helm4: Helm, rabbit_server: RabbitServer, tmp_path: Path
):
    """More pods than messages (the docs' caveat) cannot happen with the chart's completions; should
    one run anyway, its worker gives up after waitSeconds with the code the pod failure policy turns
    into a failed Job."""
    values = {"items": ["apple"], "command": PROGRAM, "waitSeconds": 1}
    release = install(helm4, rabbit_server, values)
    first = run_pod(release, tmp_path, "pod-0")
    assert first.exit_code == 0, first.logs
    extra = run_pod(release, tmp_path, "pod-1")
    assert extra.exit_code == ExitCode.NO_WORK, extra.logs
    assert "no message arrived" in extra.logs
    rules = release.job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert ExitCode.NO_WORK in rules[0]["onExitCodes"]["values"]
