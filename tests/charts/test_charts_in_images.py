"""The worker images, run exactly as the charts run them: command, args, env and volumes come from
`helm template`, each container is `docker run` of the image the chart names (the one `make images`
built), through the image's own ENTRYPOINT, on real brokers. Nothing here restates an argument."""

import json
from pathlib import Path

import pytest

from tests.support.helm import Helm, chart_path
from tests.support.images import BuiltImages
from tests.support.jobcontroller import JobController, JobOutcome
from tests.support.podrunners import DockerPodRunner
from tests.support.processes import run_jobworker
from tests.support.rendered import LocalPod, Manifests
from tests.support.servers import RabbitServer, RedisServer

pytestmark = pytest.mark.docker

FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
WORDS = ["foo", "bar", "baz", "qux", "xyz"]
# Prints "got ITEM" on a line of its own: the worker's logs share the container's output.
PROGRAM = ["python", "-c", "import sys; print('got', sys.stdin.read())"]


def run(manifests: Manifests, directory: Path, addresses: dict[str, str]) -> JobOutcome:
    job = manifests.get("Job")
    runner = DockerPodRunner(manifests, job, directory, addresses)
    outcome = JobController(job, runner).run()
    assert runner.stand_ins == set(), "every container must run in its image"
    return outcome


def got(logs: str) -> list[str]:
    return [line.removeprefix("got ") for line in logs.splitlines() if line.startswith("got ")]


def test_the_fine_image_drains_a_queue(built_images: BuiltImages, helm4: Helm, tmp_path: Path):
    manifests = helm4.template(chart_path("fine-queue-job"), {
        "items": FRUITS, "parallelism": 2, "command": PROGRAM,
    })  # fmt: skip
    password = manifests.secret_data("demo-redis")["redis-password"]
    with RedisServer(tmp_path, password=password) as redis:
        addresses = {"demo-redis": f"127.0.0.1:{redis.port}"}
        outcome = run(manifests, tmp_path / "pods", addresses)
        pod = LocalPod(manifests, manifests.get("Job"), tmp_path / "status", addresses=addresses)
        status = json.loads(run_jobworker(["status", "--json"], env=pod.container("worker").env).stdout)
    assert outcome.succeeded, [pod.logs for pod in outcome.pods]
    assert sorted(item for pod in outcome.pods for item in got(pod.container_logs["worker"])) == sorted(
        FRUITS
    )
    assert (status["pending"], status["in_flight"], status["done"], status["failed"]) == (0, 0, 10, 0)


def test_the_coarse_image_consumes_one_message(built_images: BuiltImages, helm4: Helm, tmp_path: Path):
    manifests = helm4.template(chart_path("coarse-queue-job"), {"items": ["apple"], "command": PROGRAM})
    credentials = manifests.secret_data("demo-rabbitmq")
    with RabbitServer() as broker:
        broker.add_user(credentials["rabbitmq-username"], credentials["rabbitmq-password"])
        outcome = run(manifests, tmp_path / "pods", {"demo-rabbitmq": f"127.0.0.1:{broker.port}"})
    assert outcome.succeeded, [pod.logs for pod in outcome.pods]
    assert [got(pod.container_logs["worker"]) for pod in outcome.pods] == [["apple"]]


@pytest.mark.parametrize("index_source", ["env", "downwardAPI"])
def test_the_indexed_image_hands_each_item_by_index(
    built_images: BuiltImages, helm4: Helm, tmp_path: Path, index_source: str
):
    manifests = helm4.template(chart_path("indexed-job"), {
        "items": WORDS, "parallelism": 3, "indexSource": index_source, "command": PROGRAM,
    })  # fmt: skip
    outcome = run(manifests, tmp_path / "pods", {})
    assert outcome.succeeded, [pod.logs for pod in outcome.pods]
    assert {pod.index: got(pod.container_logs["worker"]) for pod in outcome.pods} == {
        index: [word] for index, word in enumerate(WORDS)
    }
