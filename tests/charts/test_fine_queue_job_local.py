"""fine-queue-job's pods, run from the rendered manifests as local processes against a real Redis.

The seed and worker containers' command, args and environment are taken from `helm template`:
the password from the rendered Secret, the items from the rendered ConfigMap, the Redis Service's
name mapped to a local redis-server started with that password. Nothing is re-typed by the test,
so a chart that renders a wrong variable, path or argument fails here.
"""

import collections
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.helm import Helm, chart_path
from tests.support.processes import JOBWORKER, run_jobworker
from tests.support.rendered import LocalPod, Manifests
from tests.support.servers import RedisServer, wait_until

CHART = chart_path("fine-queue-job")
REDIS = "demo-redis"
# The Kubernetes docs' example items.
FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
VALUES = {"items": FRUITS, "command": ["echo", "processed", "{item}"], "parallelism": 2}
TIMEOUT = 120


@pytest.fixture
def rendered(helm4: Helm) -> Manifests:
    return helm4.template(CHART, VALUES)


@pytest.fixture
def redis(rendered: Manifests, tmp_path: Path):
    """A redis-server with the password of the rendered Secret, standing in for the Service."""
    password = rendered.secret_data(REDIS)["redis-password"]
    server = RedisServer(tmp_path / "redis", password=password, appendonly=True)
    server.directory.mkdir()
    with server:
        yield server


def pods(rendered: Manifests, redis: RedisServer, tmp_path: Path, names: str) -> list[LocalPod]:
    addresses = {REDIS: f"127.0.0.1:{redis.port}"}
    job = rendered.get("Job")
    return [LocalPod(rendered, job, tmp_path / f"pod-{name}", addresses=addresses) for name in names]


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, out.decode(), err.decode()


def processed(outputs: list[str]) -> collections.Counter:
    """How often each item was processed, from the workers' stdout ("processed ITEM" lines)."""
    lines = [line for out in outputs for line in out.splitlines()]
    assert all(line.startswith("processed ") for line in lines), lines
    return collections.Counter(line.removeprefix("processed ") for line in lines)


def queue_status(pod: LocalPod) -> dict:
    """`jobworker status --json` with the worker container's own environment."""
    status = run_jobworker(["status", "--json"], env=pod.container("worker").env)
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)


def test_rendered_containers_resolve_to_local_processes(
    rendered: Manifests, redis: RedisServer, tmp_path: Path
):
    (pod,) = pods(rendered, redis, tmp_path, "a")
    seed, worker = pod.container("seed"), pod.container("worker")
    items_file = tmp_path / "pod-a" / "volumes" / "items" / "items.json"
    assert seed.argv == [*JOBWORKER, "seed", "--file", str(items_file)]
    assert json.loads(items_file.read_text()) == FRUITS
    assert worker.argv == [*JOBWORKER, "fine", "--", "echo", "processed", "{item}"], "ENTRYPOINT + args"
    for container in (seed, worker):
        assert container.env["REDIS_URL"] == f"redis://127.0.0.1:{redis.port}/0"
        assert container.env["REDIS_PASSWORD"] == redis.password
        assert container.env["QUEUE_NAME"] == "demo-fine-queue-job"
        assert container.env["TMPDIR"] == str(tmp_path / "pod-a" / "volumes" / "tmp")


def test_two_pods_seed_together_and_process_the_docs_example_once(
    rendered: Manifests, redis: RedisServer, tmp_path: Path
):
    """Both pods start at once, as the Job controller starts them: each runs its seed container,
    then its worker, like the kubelet; the two seeds race, and the items go in once."""
    job_pods = pods(rendered, redis, tmp_path, "ab")
    with ThreadPoolExecutor(len(job_pods)) as pool:
        started = list(pool.map(LocalPod.start, job_pods))
    results = [finish(process) for (process,) in started]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    assert processed([out for _, out, _ in results]) == collections.Counter(FRUITS)
    status = queue_status(job_pods[0])
    assert status | {"queue": None} == {"queue": None, "pending": 0, "in_flight": 0, "done": 10, "failed": 0,
                                        "sealed": True, "state": "sealed"}  # fmt: skip


def test_two_workers_started_before_the_seeding_ends_wait_and_process_everything(
    rendered: Manifests, redis: RedisServer, tmp_path: Path
):
    """Two workers already running on the empty list when the seed container starts: the chart
    gives them WAIT_FOR_SEAL, so they wait for the items instead of taking the empty list for a
    finished queue, and both exit 0 once the 10 items are done."""
    pod_a, pod_b = pods(rendered, redis, tmp_path, "ab")
    client = redis.client()
    baseline = len(client.client_list())
    workers = [pod_a.container("worker").start(), pod_b.container("worker").start()]
    wait_until(
        lambda: len(client.client_list()) >= baseline + 2 or any(w.poll() is not None for w in workers),
        60,
        "both workers to connect",
    )
    assert all(worker.poll() is None for worker in workers), "a worker exited on the empty list"
    seeding = pod_a.container("seed").run(TIMEOUT)
    assert seeding.returncode == 0, seeding.stderr
    assert b"pushed 10 items" in seeding.stderr
    results = [finish(worker) for worker in workers]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    assert processed([out for _, out, _ in results]) == collections.Counter(FRUITS)


def test_a_replacement_pod_seeds_nothing_and_finds_the_work_done(
    rendered: Manifests, redis: RedisServer, tmp_path: Path
):
    """Kubernetes replaces failed pods: the new pod's seed must not push the items again."""
    first, replacement = pods(rendered, redis, tmp_path, "ab")
    (worker,) = first.start()
    code, out, err = finish(worker)
    assert code == 0, err
    assert processed([out]) == collections.Counter(FRUITS)
    (late,) = replacement.start()
    assert b"already holds these 10 items" in replacement.init_results[0].stderr
    code, out, err = finish(late)
    assert code == 0, err
    assert out == ""
    assert queue_status(replacement)["done"] == 10
