#!/usr/bin/env python3
"""Whole Jobs on the cluster: each pattern, ours against the Kubernetes docs' original, in one run.

On the cluster of the current kubeconfig (by default the local one of `make cluster`), with the same
items, parallelism and trivial work per item (print it) for both contenders:

  fine      the docs' worker (their rediswq protocol, bench/docs/fine-worker) on a Redis list filled
            with redis-cli, against fine-queue-job (handler jobworker.handlers:echo)
  coarse    the docs' Job (a pod per item running `amqp-consume -c 1`, bench/docs/coarse-worker) on a
            queue filled with amqp-publish, against coarse-queue-job (`cat` per item)
  indexed   the docs' Indexed Job (a bash init container writes the item, busybox `rev` reads it),
            against indexed-job with the worker image (`cat`) and with its init-container variant

Both contenders share a broker started before either is timed (the repository's redis chart without
a password, as the docs' worker needs; its rabbitmq chart): the docs fill the queue by hand and then
start their Job, ours is a `helm install` of the job chart pointed at that broker. For each: wall time
from the start (filling or install) to the Job's Complete condition, items per second, pods created,
pod-seconds (the sum over pods of the time from their first container's start to their last one's
end, as the kubelet reports it, to the second) and the idle part of it (a pod alive before its first
item or after its last one, from the log's timestamps), the mean time from a pod's scheduling to its
first item (what a pod per item pays per item), the broker's peak memory, and the ratio ours/docs.
With --repeat N each size runs N times and every figure is the median: one run on a small shared
machine can be several percent off. The repeats go in rounds over a pattern's variants, ours and
the docs' taking turns at going first (see run_size).

Usage: bench/cluster_jobs.py [--quick] [--json] [--patterns P,...] [--items N,...] [--repeat N]
It builds the docs' images (Docker) and, on the local cluster, imports them; elsewhere the cluster
must be able to pull them (see --help).
"""

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "cluster"))

from localcluster.standins import ImageMap, stand_in_values  # noqa: E402

LOCAL_KUBECONFIG = REPO / ".cluster" / "kubeconfig"
IMAGE_MAP = REPO / ".cluster" / "image-map"
DOCS_FINE_IMAGE = "localhost/jobworker-bench/docs-fine-worker:1"
DOCS_COARSE_IMAGE = "localhost/jobworker-bench/docs-coarse-worker:1"
JOB_TIMEOUT = 1800
WAIT_SLICE = 10  # seconds of one `kubectl wait`, between checks for a failed Job
# (pattern, items, parallelism) of a full run, and of --quick (a test runs it).
FULL = [
    ("fine", 1000, 2),
    ("fine", 1000, 8),
    ("fine", 20000, 2),
    ("fine", 20000, 8),
    ("coarse", 20, 4),
    ("coarse", 100, 4),
    ("indexed", 20, 8),
    ("indexed", 200, 8),
]
QUICK = [("fine", 100, 2), ("coarse", 3, 2), ("indexed", 3, 2)]


@dataclass
class Measure:
    seconds: float
    pods: int
    pod_seconds: float
    idle_pod_seconds: float  # before a pod's first item and after its last one
    end_idle_pod_seconds: float  # after its last item only: waiting for the end of the queue
    broker_peak_bytes: int | None
    items_done: int
    # From the first item's log line to the last one's, over all pods: the queue protocol's own
    # time, without the pods' start and end that the wall time includes.
    processing_seconds: float
    # From a pod's scheduling to its first item's log line, the mean over pods: what starting a
    # pod costs before it works (both times to the microsecond; a pod per item pays it per item).
    start_seconds: float


def median_of(measures: list[Measure]) -> Measure:
    """Each field's median over repeated runs (the lower middle one for an even count): one run
    on a shared machine can be off by several percent."""
    values = {}
    for entry in fields(Measure):
        observed = [getattr(measure, entry.name) for measure in measures]
        values[entry.name] = None if None in observed else statistics.median_low(observed)
    return Measure(**values)


@dataclass
class Run:
    pattern: str
    items: int
    parallelism: int
    ours: Measure
    docs: Measure
    variant: str = "worker image"
    repeats: int = 1
    ratios: dict[str, float | None] = field(default_factory=dict)


class Cluster:
    """kubectl and helm against one cluster, in throwaway namespaces."""

    def __init__(self, kubeconfig: str, kubectl: str, helm: str, images: ImageMap | None) -> None:
        self.kubeconfig, self.kubectl_binary, self.helm_binary, self.images = (
            kubeconfig,
            kubectl,
            helm,
            images,
        )

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        command = [self.kubectl_binary, f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=600, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args[:3])}: {result.stderr.strip()[-800:]}")
        return result.stdout

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm_install(
        self, namespace: str, release: str, chart: str, values: dict[str, Any], wait: bool
    ) -> None:
        chart_dir = REPO / "charts" / chart
        subprocess.run(
            [self.helm_binary, "dependency", "build", "--skip-refresh", str(chart_dir)],
            capture_output=True,
            check=True,
        )
        if self.images is not None:
            values = stand_in_values(chart_dir, values, self.images)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(values, file)
            file.flush()
            command = [
                self.helm_binary,
                "install",
                release,
                str(chart_dir),
                "-n",
                namespace,
                "--values",
                file.name,
                f"--kubeconfig={self.kubeconfig}",
                "--timeout",
                "20m",
            ]
            result = subprocess.run(
                [*command, *(["--wait"] if wait else [])], capture_output=True, text=True, check=False
            )
        if result.returncode != 0:
            raise RuntimeError(f"helm install {chart}: {result.stderr.strip()[-800:]}")

    def image(self, official: str) -> str:
        return official if self.images is None else self.images.for_official(official)


class PeakMemory:
    """The peak working-set memory of the broker pod's containers, sampled from the kubelet each
    second; a pattern without a broker (pod_prefix None) has none."""

    def __init__(self, cluster: Cluster, namespace: str, pod_prefix: str | None) -> None:
        self.cluster, self.namespace, self.prefix = cluster, namespace, pod_prefix
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakMemory":
        if self.prefix is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        nodes = [node["metadata"]["name"] for node in self.cluster.json("get", "nodes")["items"]]
        while not self._stop.wait(1):
            for node in nodes:
                raw = self.cluster.kubectl(
                    "get", "--raw", f"/api/v1/nodes/{node}/proxy/stats/summary", check=False
                )
                for pod in json.loads(raw or "{}").get("pods", []):
                    ref = pod["podRef"]
                    if ref["namespace"] == self.namespace and ref["name"].startswith(self.prefix):
                        used = sum(
                            c.get("memory", {}).get("workingSetBytes", 0) for c in pod.get("containers", [])
                        )
                        self.peak = max(self.peak or 0, used)


# --- measuring a finished Job --------------------------------------------------------------------------
def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def wait_for_job(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    """The Job once it is Complete. `kubectl wait` watches the Job and returns as the condition is
    set, where polling would add up to its interval to a fill Job's time (which the wall time of
    the Job after it includes) and take CPU from the Job measured with a kubectl run or two every
    interval. Between waits, a Failed Job or an image that cannot be pulled ends the run."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        waited_from = time.monotonic()
        with contextlib.suppress(RuntimeError):  # not Complete within the slice: see why below
            cluster.kubectl(
                "wait", f"job/{name}", "-n", namespace, "--for=condition=Complete", f"--timeout={WAIT_SLICE}s"
            )
        job = cluster.json("get", "job", name, "-n", namespace)
        conditions = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions") or []}
        if conditions.get("Complete") == "True":
            return job
        if conditions.get("Failed") == "True":
            raise RuntimeError(f"job {name} failed: {job['status']}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {name} did not complete within {JOB_TIMEOUT} s")
        _fail_on_missing_images(cluster, namespace, name)
        # kubectl wait that fails at once (the API server busy) must not become a busy loop.
        time.sleep(max(0.0, 1.0 - (time.monotonic() - waited_from)))


def _fail_on_missing_images(cluster: Cluster, namespace: str, job: str) -> None:
    """A pod that cannot pull its image would keep the Job waiting until JOB_TIMEOUT."""
    pods = cluster.json("get", "pods", "-n", namespace, "-l", f"batch.kubernetes.io/job-name={job}")
    for pod in pods["items"]:
        status_of = pod["status"]
        statuses = (status_of.get("initContainerStatuses") or []) + (status_of.get("containerStatuses") or [])
        for status in statuses:
            reason = (status.get("state", {}).get("waiting") or {}).get("reason")
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                raise RuntimeError(f"job {job}: pod {pod['metadata']['name']} cannot pull {status['image']}")


def pod_log(cluster: Cluster, namespace: str, pod: dict[str, Any], attempts: int = 3) -> str:
    """The main container's log with timestamps. A log that cannot be read fails the run: read as
    empty, the pod's items would go uncounted and its whole time count as idle."""
    command = ("logs", pod["metadata"]["name"], "-n", namespace, "-c", pod["spec"]["containers"][0]["name"])
    for _ in range(attempts - 1):
        try:
            return cluster.kubectl(*command, "--timestamps")
        except RuntimeError:
            time.sleep(1)
    return cluster.kubectl(*command, "--timestamps")


def scheduled_at(cluster: Cluster, namespace: str) -> dict[str, float]:
    """When the scheduler bound each pod, from its Scheduled events: those carry microseconds,
    where a pod's own timestamps are whole seconds."""
    events = cluster.json("get", "events.events.k8s.io", "-n", namespace)["items"]
    return {
        event["regarding"]["name"]: _time(event["eventTime"])
        for event in events
        if event.get("reason") == "Scheduled" and event.get("eventTime")
    }


def measure(
    cluster: Cluster,
    namespace: str,
    job_name: str,
    started: float,
    *,
    item_line: re.Pattern[str],
    peak: PeakMemory,
) -> Measure:
    """Wall time, pods, pod-seconds and idle pod-seconds of a completed Job, from the cluster."""
    job = wait_for_job(cluster, namespace, job_name)
    finished = max(
        _time(c["lastTransitionTime"]) for c in job["status"]["conditions"] if c["type"] == "Complete"
    )
    pods = cluster.json("get", "pods", "-n", namespace, "-l", f"batch.kubernetes.io/job-name={job_name}")[
        "items"
    ]
    scheduled = scheduled_at(cluster, namespace)
    pod_seconds = idle = end_idle = 0.0
    items_done = 0
    starts = []
    first_item, last_item = float("inf"), float("-inf")
    for pod in pods:
        statuses = [
            *(pod["status"].get("initContainerStatuses") or []),
            *(pod["status"].get("containerStatuses") or []),
        ]
        runs = [s["state"]["terminated"] for s in statuses if "terminated" in s.get("state", {})]
        if not runs:
            continue
        # The kubelet reports container times to the second: sums over many pods are still fair.
        begin = min(_time(run["startedAt"]) for run in runs)
        end = max(_time(run["finishedAt"]) for run in runs)
        pod_seconds += end - begin
        log = pod_log(cluster, namespace, pod)
        stamped = [(_time(line.split(" ", 1)[0]), line) for line in log.splitlines() if " " in line]
        stamps = [stamp for stamp, line in stamped if item_line.search(line)]
        items_done += len(stamps)
        if not stamps:
            idle += end - begin
            continue
        first_item, last_item = min(first_item, *stamps), max(last_item, *stamps)
        name = pod["metadata"]["name"]
        starts.append(min(stamps) - scheduled.get(name, _time(pod["metadata"]["creationTimestamp"])))
        # The end of the wait after the last item: the worker's last log line (to the nanosecond),
        # which it writes as it exits.
        waited = max(stamp for stamp, _ in stamped) - max(stamps)
        end_idle += waited
        # Log stamps are to the nanosecond, `begin` to the second: the wait before the first item
        # would otherwise count up to a second the pod-seconds do not, and the idle time of a
        # short pod exceed its running time.
        idle += min(max(min(stamps) - begin, 0.0) + waited, end - begin)
    processing = max(last_item - first_item, 0.0)
    return Measure(
        finished - started,
        len(pods),
        pod_seconds,
        idle,
        end_idle,
        peak.peak,
        items_done,
        processing,
        statistics.mean(starts) if starts else 0.0,
    )


# --- the contenders --------------------------------------------------------------------------------------
def items_of(count: int) -> list[str]:
    return [f"item-{number:06}" for number in range(count)]


def start_broker(cluster: Cluster, namespace: str, pattern: str) -> None:
    """The broker both contenders share, started before either is timed (as the docs have you do,
    and as a broker set up once for many Jobs is): Redis without a password, as the docs' worker
    needs it, or RabbitMQ with the chart's user."""
    if pattern == "fine":
        cluster.helm_install(namespace, "broker", "redis", {"auth": {"enabled": False}}, wait=True)
    elif pattern == "coarse":
        cluster.helm_install(namespace, "broker", "rabbitmq", {}, wait=True)


def ours_fine(cluster: Cluster, namespace: str, items: int, parallelism: int) -> Measure:
    started = time.time()
    with PeakMemory(cluster, namespace, "broker-redis") as peak:
        values = {
            "items": items_of(items),
            "handler": "jobworker.handlers:echo",
            "parallelism": parallelism,
            "activeDeadlineSeconds": JOB_TIMEOUT,
            "redis": {"enabled": False},
            "externalRedis": {"host": "broker-redis"},
        }
        cluster.helm_install(namespace, "ours", "fine-queue-job", values, wait=False)
        return measure(
            cluster, namespace, "ours-fine-queue-job", started, item_line=re.compile(r" item-\d+$"), peak=peak
        )


def docs_fine(cluster: Cluster, namespace: str, items: int, parallelism: int) -> Measure:
    """The docs' steps: fill the list job2 with redis-cli, start the Job of workers."""
    started = time.time()
    with PeakMemory(cluster, namespace, "broker-redis") as peak:
        pushes = "".join(f"RPUSH job2 {item}\n" for item in items_of(items))
        cluster.kubectl(
            "exec", "-i", "-n", namespace, "broker-redis-0", "--", "redis-cli", "--pipe", stdin=_resp(pushes)
        )
        container = {
            "name": "c",
            "image": DOCS_FINE_IMAGE,
            "env": [{"name": "REDIS_HOST", "value": "broker-redis"}],
        }
        cluster.kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=json.dumps(_docs_job("docs-fine", parallelism, None, container)),
        )
        return measure(
            cluster, namespace, "docs-fine", started, item_line=re.compile(r" item-\d+$"), peak=peak
        )


def _resp(commands: str) -> str:
    """Commands in the Redis protocol, for `redis-cli --pipe`."""
    out = []
    for line in commands.splitlines():
        words = line.split()
        out.append(f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words))
    return "".join(out)


def ours_coarse(variant: str) -> Callable[[Cluster, str, int, int], Measure]:
    """coarse-queue-job seeding its items itself (every worker seeds before it takes its message,
    the chart's way), or on a queue filled beforehand by one `jobworker seed` pod (the docs' way,
    with our seeder)."""

    def run(cluster: Cluster, namespace: str, items: int, parallelism: int) -> Measure:
        started = time.time()
        with PeakMemory(cluster, namespace, "broker-rabbitmq") as peak:
            values: dict[str, Any] = {
                "items": items_of(items),
                "command": ["cat"],
                "parallelism": parallelism,
                "activeDeadlineSeconds": JOB_TIMEOUT,
                "rabbitmq": {"enabled": False},
                "externalRabbitmq": {
                    "host": "broker-rabbitmq",
                    "existingSecret": "broker-rabbitmq",
                    "existingSecretUsernameKey": "rabbitmq-username",
                    "existingSecretPasswordKey": "rabbitmq-password",
                },
            }
            if variant == "filled first":
                _seed_coarse_queue(cluster, namespace, "ours", items)
                values.update(items=[], completions=items, queueName="ours")
            cluster.helm_install(namespace, "ours", "coarse-queue-job", values, wait=False)
            return measure(
                cluster,
                namespace,
                "ours-coarse-queue-job",
                started,
                # The worker's own line: `cat` prints the item without a newline, and the
                # runtime may join that partial line to the next line of the log.
                item_line=re.compile(r"item done: item-\d+"),
                peak=peak,
            )

    return run


def _seed_coarse_queue(cluster: Cluster, namespace: str, queue: str, items: int) -> None:
    """One pod of the coarse worker image running `jobworker seed` (all items in one process)."""
    chart = (REPO / "charts" / "coarse-queue-job" / "Chart.yaml").read_text()
    version = re.search(r'^appVersion: "?([^"\n]+)', chart, re.MULTILINE)
    if version is None:
        raise RuntimeError("charts/coarse-queue-job/Chart.yaml has no appVersion")
    credentials = [
        {
            "name": f"AMQP_{key}",
            "valueFrom": {"secretKeyRef": {"name": "broker-rabbitmq", "key": f"rabbitmq-{key.lower()}"}},
        }
        for key in ("USERNAME", "PASSWORD")
    ]
    seeder = {
        "name": "seed",
        "image": f"ghcr.io/jobworker/coarse-queue-worker:{version[1]}",
        "command": ["jobworker", "seed", "--queue", queue, *items_of(items)],
        "env": [*credentials, {"name": "AMQP_URL", "value": "amqp://broker-rabbitmq:5672/%2F"}],
    }
    job = _docs_job("ours-fill", 1, 1, seeder)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(job))
    wait_for_job(cluster, namespace, "ours-fill")


def docs_coarse(cluster: Cluster, namespace: str, items: int, parallelism: int) -> Measure:
    """The docs' steps: declare job1 and publish each item with amqp-publish, then the Job of
    `amqp-consume -c 1` pods, completions = items."""
    started = time.time()
    with PeakMemory(cluster, namespace, "broker-rabbitmq") as peak:
        url = {"name": "BROKER_URL", "value": "amqp://$(USER):$(PASSWORD)@broker-rabbitmq:5672"}
        secret = [
            {
                "name": key,
                "valueFrom": {"secretKeyRef": {"name": "broker-rabbitmq", "key": f"rabbitmq-{field}"}},
            }
            for key, field in (("USER", "username"), ("PASSWORD", "password"))
        ]
        fill = (
            "amqp-declare-queue --url=$BROKER_URL -q job1 -d >/dev/null && for item in "
            + " ".join(items_of(items))
            + "; do amqp-publish --url=$BROKER_URL -r job1 -p -b $item; done"
        )
        filler = {
            "name": "c",
            "image": DOCS_COARSE_IMAGE,
            "command": ["sh", "-c", fill],
            "env": [*secret, url],
        }
        cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=json.dumps(_docs_job("docs-fill", 1, 1, filler))
        )
        wait_for_job(cluster, namespace, "docs-fill")
        worker = {
            "name": "c",
            "image": DOCS_COARSE_IMAGE,
            "env": [*secret, url, {"name": "QUEUE", "value": "job1"}],
        }
        cluster.kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            stdin=json.dumps(_docs_job("docs-coarse", parallelism, items, worker)),
        )
        return measure(
            cluster,
            namespace,
            "docs-coarse",
            started,
            item_line=re.compile(r"Processing item-\d+"),
            peak=peak,
        )


def ours_indexed(variant: str) -> Callable[[Cluster, str, int, int], Measure]:
    def run(cluster: Cluster, namespace: str, items: int, parallelism: int) -> Measure:
        values: dict[str, Any] = {"items": items_of(items), "parallelism": parallelism, "command": ["cat"]}
        if variant == "init container":
            values.update(
                programImage={"repository": "docker.io/library/busybox", "tag": "1.36.1"},
                command=["rev", "/input/data.txt"],
            )
        started = time.time()
        with PeakMemory(cluster, namespace, None) as peak:
            cluster.helm_install(
                namespace, "ours", "indexed-job", {**values, "activeDeadlineSeconds": JOB_TIMEOUT}, wait=False
            )
            line = re.compile(r"(item-\d+|\d+-meti)$")
            return measure(cluster, namespace, "ours-indexed-job", started, item_line=line, peak=peak)

    return run


def docs_indexed(cluster: Cluster, namespace: str, items: int, parallelism: int) -> Measure:
    """The docs' Indexed Job: a bash init container writes item N of a bash array, busybox rev reads it."""
    started = time.time()
    array = " ".join(items_of(items))
    job = _docs_job(
        "docs-indexed",
        parallelism,
        items,
        {
            "name": "worker",
            "image": cluster.image("docker.io/library/busybox:1.36.1"),
            "command": ["rev", "/input/data.txt"],
            "volumeMounts": [{"mountPath": "/input", "name": "input"}],
        },
    )
    spec = job["spec"]
    spec["completionMode"] = "Indexed"
    spec["template"]["spec"]["initContainers"] = [
        {
            "name": "input",
            "image": cluster.image("docker.io/library/bash:5"),
            "command": [
                "bash",
                "-c",
                f"items=({array}); echo ${{items[$JOB_COMPLETION_INDEX]}} > /input/data.txt",
            ],
            "volumeMounts": [{"mountPath": "/input", "name": "input"}],
        }
    ]
    spec["template"]["spec"]["volumes"] = [{"name": "input", "emptyDir": {}}]
    with PeakMemory(cluster, namespace, None) as peak:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(job))
        return measure(
            cluster, namespace, "docs-indexed", started, item_line=re.compile(r"\d+-meti$"), peak=peak
        )


def _docs_job(
    name: str, parallelism: int, completions: int | None, container: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "parallelism": parallelism,
        "backoffLimit": 6,
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"imagePullPolicy": "IfNotPresent", **container}],
            }
        },
    }
    if completions is not None:
        spec["completions"] = completions
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


CONTENDERS: dict[str, list[tuple[str, Callable, Callable]]] = {
    "fine": [("worker image", ours_fine, docs_fine)],
    "coarse": [
        ("worker image", ours_coarse("worker image"), docs_coarse),
        ("filled first", ours_coarse("filled first"), docs_coarse),
    ],
    "indexed": [
        ("worker image", ours_indexed("worker image"), docs_indexed),
        ("init container", ours_indexed("init container"), docs_indexed),
    ],
}


def run_pair(
    cluster: Cluster,
    pattern: str,
    contenders: tuple[Callable, Callable],
    size: tuple[int, int],
    docs_first: bool,
) -> tuple[Measure, Measure]:
    """Ours and the docs' original, one after the other in one namespace, on one broker started
    first and not timed (each uses a queue of its own); the docs' first when `docs_first`."""
    items, parallelism = size
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        start_broker(cluster, namespace, pattern)
        ours, docs = contenders
        if docs_first:
            docs_measure = docs(cluster, namespace, items, parallelism)
            return ours(cluster, namespace, items, parallelism), docs_measure
        return ours(cluster, namespace, items, parallelism), docs(cluster, namespace, items, parallelism)
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=300s", check=False)


def turns(variants: int, repeats: int) -> list[tuple[int, bool]]:
    """The order run_size runs a pattern's pairs in: (variant index, whether the docs' original goes
    first), round after round. Who goes first alternates from one variant to the next within a
    round, and for each variant from one round to the next: with an even number of rounds, each
    variant has the docs' original first in half of its pairs."""
    return [
        (index, (round_number + index) % 2 == 1)
        for round_number in range(repeats)
        for index in range(variants)
    ]


def run_size(cluster: Cluster, pattern: str, size: tuple[int, int], repeats: int) -> list[Run]:
    """Every variant of a pattern (its entries in CONTENDERS) at one size: `repeats` rounds, each
    running every variant's pair once in a fresh namespace, each figure the median over the rounds.

    Rounds rather than one variant's repeats after the other's, and ours and the docs' taking
    turns at going first: the cluster does not run at one speed for the length of a run (a
    broker just started, etcd and the kubelet's state growing with every pod), and whatever
    drifts with time must weigh on every variant and on both contenders alike, not end up in
    the ratio between them."""
    variants = CONTENDERS[pattern]
    pairs: list[list[tuple[Measure, Measure]]] = [[] for _ in variants]
    for index, docs_first in turns(len(variants), repeats):
        _, ours, docs = variants[index]
        pairs[index].append(run_pair(cluster, pattern, (ours, docs), size, docs_first))
    runs = []
    for (variant, _, _), measured in zip(variants, pairs, strict=True):
        run = Run(
            pattern,
            *size,
            median_of([pair[0] for pair in measured]),
            median_of([pair[1] for pair in measured]),
            variant,
            repeats,
        )
        run.ratios = ratios(run)
        runs.append(run)
    return runs


# --- setting up and reporting ----------------------------------------------------------------------
def build_docs_images(python_image: str, local_bin: str | None) -> None:
    for reference, directory in ((DOCS_FINE_IMAGE, "fine-worker"), (DOCS_COARSE_IMAGE, "coarse-worker")):
        subprocess.run(
            [
                "docker",
                "build",
                "-q",
                "--build-arg",
                f"PYTHON_IMAGE={python_image}",
                "-t",
                reference,
                "-f",
                f"bench/docs/{directory}/Dockerfile",
                ".",
            ],
            cwd=REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    if local_bin:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "localcluster",
                "--bin",
                local_bin,
                "import",
                DOCS_FINE_IMAGE,
                DOCS_COARSE_IMAGE,
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO / "cluster")},
            check=True,
        )


def ratios(run: Run) -> dict[str, float | None]:
    def ratio(ours: float, docs: float) -> float | None:
        # None (JSON null) where the docs' figure is 0: NaN is not JSON, and jq refuses it.
        return round(ours / docs, 3) if docs else None

    return {
        "seconds": ratio(run.ours.seconds, run.docs.seconds),
        "pod_seconds": ratio(run.ours.pod_seconds, run.docs.pod_seconds),
        "idle_pod_seconds": ratio(run.ours.idle_pod_seconds, run.docs.idle_pod_seconds),
        "end_idle_pod_seconds": ratio(run.ours.end_idle_pod_seconds, run.docs.end_idle_pod_seconds),
        "processing_seconds": ratio(run.ours.processing_seconds, run.docs.processing_seconds),
        "start_seconds": ratio(run.ours.start_seconds, run.docs.start_seconds),
    }


def as_json(run: Run) -> dict[str, Any]:
    return {
        "pattern": run.pattern if run.variant == "worker image" else f"{run.pattern} ({run.variant})",
        "items": run.items,
        "parallelism": run.parallelism,
        "repeats": run.repeats,
        "ours_seconds": round(run.ours.seconds, 2),
        "docs_seconds": round(run.docs.seconds, 2),
        "ours_items_per_second": round(run.items / run.ours.seconds, 1),
        "docs_items_per_second": round(run.items / run.docs.seconds, 1),
        "ours_pods": run.ours.pods,
        "docs_pods": run.docs.pods,
        "ours_pod_seconds": round(run.ours.pod_seconds, 1),
        "docs_pod_seconds": round(run.docs.pod_seconds, 1),
        "ours_idle_pod_seconds": round(run.ours.idle_pod_seconds, 1),
        "docs_idle_pod_seconds": round(run.docs.idle_pod_seconds, 1),
        "ours_end_idle_pod_seconds": round(run.ours.end_idle_pod_seconds, 2),
        "docs_end_idle_pod_seconds": round(run.docs.end_idle_pod_seconds, 2),
        "ours_broker_peak_bytes": run.ours.broker_peak_bytes,
        "docs_broker_peak_bytes": run.docs.broker_peak_bytes,
        "ours_processing_seconds": round(run.ours.processing_seconds, 2),
        "docs_processing_seconds": round(run.docs.processing_seconds, 2),
        "ours_start_seconds": round(run.ours.start_seconds, 3),
        "docs_start_seconds": round(run.docs.start_seconds, 3),
        "ours_items_done": run.ours.items_done,
        "docs_items_done": run.docs.items_done,
        "ratios": run.ratios,
    }


def _shown(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def _pair(key: str, form: str) -> Callable[[dict[str, Any]], str]:
    """A cell "ours / docs" of one figure."""
    return lambda run: f"{format(run[f'ours_{key}'], form)} / {format(run[f'docs_{key}'], form)}"


def _broker_megabytes(run: dict[str, Any]) -> str:
    return " / ".join(
        f"{run[f'{who}_broker_peak_bytes'] / 1e6:.0f}" if run[f"{who}_broker_peak_bytes"] else "-"
        for who in ("ours", "docs")
    )


# The table's columns: title, and how to show a run (one entry of `runs`) in it. The table is in
# Markdown, so that the README shows what the script printed, as it printed it.
COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("pattern", lambda run: run["pattern"]),
    ("items", lambda run: f"{run['items']:,}"),
    ("par.", lambda run: str(run["parallelism"])),
    ("seconds ours / docs", _pair("seconds", ".1f")),
    ("ratio", lambda run: _shown(run["ratios"]["seconds"])),
    ("pods ours / docs", _pair("pods", "d")),
    ("pod-seconds ours / docs", _pair("pod_seconds", ".0f")),
    ("ratio pod-s", lambda run: _shown(run["ratios"]["pod_seconds"])),
    ("idle pod-s ours / docs", _pair("idle_pod_seconds", ".1f")),
    ("end idle pod-s ours / docs", _pair("end_idle_pod_seconds", ".2f")),
    ("item span s ours / docs", _pair("processing_seconds", ".2f")),
    ("start s ours / docs", _pair("start_seconds", ".2f")),
    ("broker MB ours / docs", _broker_megabytes),
]


def print_table(runs: list[dict[str, Any]], growth: list[str]) -> None:
    """The runs as a Markdown table (text left, figures right), then how each pattern grows."""
    print("| " + " | ".join(title for title, _ in COLUMNS) + " |")
    print("| --- " + "| ---: " * (len(COLUMNS) - 1) + "|")
    for run in runs:
        print("| " + " | ".join(show(run) for _, show in COLUMNS) + " |")
    if growth:
        print()
    for line in growth:
        print(line)


def growth_lines(runs: list[dict[str, Any]]) -> list[str]:
    """How each pattern's times grow from its smallest to its largest size, at the same parallelism."""
    lines = []
    by_key: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for run in runs:
        by_key.setdefault((run["pattern"], run["parallelism"]), []).append(run)
    for (pattern, parallelism), group in by_key.items():
        if len(group) < 2:
            continue
        small, large = min(group, key=lambda r: r["items"]), max(group, key=lambda r: r["items"])
        factor = large["items"] / small["items"]
        lines.append(
            f"{pattern}, parallelism {parallelism}: {factor:g}x the items take "
            f"{large['ours_seconds'] / small['ours_seconds']:.1f}x the time (ours), "
            f"{large['docs_seconds'] / small['docs_seconds']:.1f}x (docs)"
        )
    return lines


def item_counts(text: str) -> set[int]:
    try:
        return {int(count) for count in text.split(",")}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give item counts such as 100 or 20,100") from None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one small run per pattern (for a test)")
    parser.add_argument("--json", action="store_true", help="one JSON object with a list `runs`")
    parser.add_argument(
        "--items",
        type=item_counts,
        help="only the sizes with these item counts, comma-separated (default: every size)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each size this many times and report each figure's median (default: 1)",
    )
    parser.add_argument(
        "--patterns",
        default=",".join(CONTENDERS),
        help=f"comma-separated, of {', '.join(CONTENDERS)} (default: all)",
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG") or str(LOCAL_KUBECONFIG))
    parser.add_argument("--kubectl", default=str(REPO / ".cluster" / "kubectl"))
    parser.add_argument(
        "--helm", default=os.environ.get("HELM") or str(REPO / ".tools" / "helm-4.1.4" / "helm")
    )
    parser.add_argument(
        "--local-bin",
        default=os.environ.get("CLUSTER_BIN"),
        help="the local cluster's programs: import the docs' images into it",
    )
    parser.add_argument(
        "--python-image",
        default=os.environ.get("PYTHON_IMAGE", "python:3.12-slim"),
        help="the base of the docs' images, off the local cluster (env PYTHON_IMAGE)",
    )
    args = parser.parse_args()
    patterns = args.patterns.split(",")
    unknown = sorted(set(patterns) - set(CONTENDERS))
    if unknown:
        parser.error(f"unknown patterns {', '.join(unknown)}: choose from {', '.join(CONTENDERS)}")
    local = Path(args.kubeconfig).resolve() == LOCAL_KUBECONFIG.resolve()
    if local and not args.local_bin:
        parser.error("on the local cluster, give --local-bin (or CLUSTER_BIN) to import the docs' images: "
                     "make bench-cluster does")  # fmt: skip
    images = ImageMap.read(IMAGE_MAP) if local else None
    # On the local cluster the base is the stand-in for the official python image, else PYTHON_IMAGE.
    python_image = images.for_repository("docker.io/library/python") if images else args.python_image
    if args.repeat < 1:
        parser.error(f"--repeat {args.repeat}: give 1 or more")
    sizes = [
        (pattern, items, parallelism)
        for pattern, items, parallelism in (QUICK if args.quick else FULL)
        if pattern in patterns and (args.items is None or items in args.items)
    ]
    if not sizes:
        parser.error("no size of these patterns has those --items")
    build_docs_images(python_image, args.local_bin if local else None)
    cluster = Cluster(args.kubeconfig, args.kubectl, args.helm, images)
    runs = []
    for pattern, items, parallelism in sizes:
        for run in run_size(cluster, pattern, (items, parallelism), args.repeat):
            runs.append(as_json(run))
            if not args.json:
                print(
                    f"{runs[-1]['pattern']} {items} items x{parallelism}: ours {run.ours.seconds:.1f} s, "
                    f"docs {run.docs.seconds:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    report = {
        "runs": runs,
        "growth": growth_lines(runs),
        "cluster": cluster.json("version")["serverVersion"]["gitVersion"],
    }
    if args.json:
        print(json.dumps(report))
    else:
        print_table(runs, report["growth"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
