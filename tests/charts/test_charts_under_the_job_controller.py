"""The job charts' rendered Jobs, run to their end by the stand-in Job controller on local processes
against real brokers: the code path of `make demo` on a machine without Docker images."""

from pathlib import Path

import pytest

from tests.support.helm import Helm, chart_path
from tests.support.jobcontroller import JobController
from tests.support.podrunners import ProcessPodRunner
from tests.support.servers import RedisServer

FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]


@pytest.mark.parametrize("parallelism", [1, 3])
def test_the_fine_queue_job_chart_runs_to_completion(helm4: Helm, tmp_path: Path, parallelism: int):
    fruits = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
    rendered = helm4.template(chart_path("fine-queue-job"), {
        "items": fruits, "command": ["echo", "processed", "{item}"], "parallelism": parallelism,
    })  # fmt: skip
    password = rendered.secret_data("demo-redis")["redis-password"]
    with RedisServer(tmp_path, password=password) as redis:
        runner = ProcessPodRunner(rendered, rendered.get("Job"), tmp_path / "pods",
                                  addresses={"demo-redis": f"127.0.0.1:{redis.port}"})  # fmt: skip
        outcome = JobController(rendered.get("Job"), runner).run()
    assert outcome.succeeded, [pod.logs for pod in outcome.pods]
    assert len(outcome.pods) == parallelism
    lines = [line for pod in outcome.pods for line in pod.logs.splitlines() if line.startswith("processed ")]
    assert sorted(lines) == sorted(f"processed {fruit}" for fruit in fruits)
