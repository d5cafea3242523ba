"""`make demo`: the three examples of the Kubernetes docs, run with this project's charts and images.

On a cluster (the current kube context answers, or a kind cluster the demo makes when Docker and
kind are installed and none answers), each example is a `helm install` of the real chart; the demo
waits for the Job, prints what its pods processed and the Job's status, and uninstalls.

Without one, it says so and runs the same examples here: `helm template` renders the chart, the
stand-in Job controller of tests/support/jobcontroller.py (a test harness, not Kubernetes) runs the
rendered Job's pods, each pod's containers as Docker containers of the images `make images` built
(or as local processes when no Docker engine answers), and the brokers run as local processes.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from jobworker.progress import ProgressBar
from tests.support.helm import Helm, chart_path, helm_binaries
from tests.support.images import docker_problem
from tests.support.jobcontroller import JobController, JobOutcome
from tests.support.podrunners import DockerPodRunner, ProcessPodRunner
from tests.support.processes import run_jobworker
from tests.support.rendered import LocalPod, Manifests
from tests.support.servers import RabbitServer, RedisServer

FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
WORDS = ["foo", "bar", "baz", "qux", "xyz"]
KIND_CLUSTER = "jobworker-demo"
REPO = Path(__file__).resolve().parents[2]
PROCESSED = re.compile(r"^processed (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    chart: str
    values: Mapping[str, Any]
    broker: str | None  # the broker chart the example's chart depends on

    @property
    def release(self) -> str:
        return f"demo-{self.key}"

    @property
    def job_name(self) -> str:
        return f"{self.release}-{self.chart}"


EXAMPLES = (
    Example(
        "fine",
        "Fine-grained work queue: a Redis list of 10 items, 2 workers leasing many each",
        "fine-queue-job",
        {"items": FRUITS, "parallelism": 2, "command": ["echo", "processed", "{item}"]},
        "redis",
    ),
    Example(
        "coarse",
        "Coarse-grained work queue: 8 RabbitMQ messages, one per pod, 2 pods at a time",
        "coarse-queue-job",
        {
            "items": FRUITS[:8],
            "parallelism": 2,
            "command": ["sh", "-c", 'printf "processed %s\\n" "$(cat -)"'],
        },
        "rabbitmq",
    ),
    Example(
        "indexed",
        "Indexed Job: 5 completions, 3 at a time, each index's item reversed by an unmodified rev",
        "indexed-job",
        {
            "items": WORDS,
            "parallelism": 3,
            "programImage": {"repository": "docker.io/library/busybox", "tag": "1.36.1"},
            "command": ["rev", "/input/data.txt"],
        },
        None,
    ),
)


@dataclass
class PodReport:
    name: str
    index: int | None
    exit_code: int
    processed: list[str]  # the items it reports (fine, coarse), or its program's output (indexed)


@dataclass
class ExampleResult:
    example: Example
    succeeded: bool
    reason: str
    completions: int | None
    parallelism: int
    pods: list[PodReport] = field(default_factory=list)
    before: str = ""
    after: str = ""
    stand_ins: list[str] = field(default_factory=list)


def items_of(example: Example, logs: Mapping[str, str]) -> list[str]:
    """What a pod processed: the "processed ITEM" lines of its worker, or the program's output."""
    worker = logs.get("worker", "")
    if example.key == "indexed":
        return worker.split()
    return PROCESSED.findall(worker)


# --- local run ---------------------------------------------------------------------------------------
@contextmanager
def local_broker(example: Example, manifests: Manifests, directory: Path) -> Iterator[dict[str, str]]:
    """The broker as a local server with the rendered Secret's credentials: {Service: host:port}."""
    if example.broker == "redis":
        service = f"{example.release}-redis"
        password = manifests.secret_data(service)["redis-password"]
        (directory / "redis").mkdir()
        with RedisServer(directory / "redis", password=password, appendonly=True) as server:
            yield {service: f"127.0.0.1:{server.port}"}
    elif example.broker == "rabbitmq":
        service = f"{example.release}-rabbitmq"
        credentials = manifests.secret_data(service)
        with RabbitServer() as server:
            server.add_user(credentials["rabbitmq-username"], credentials["rabbitmq-password"])
            yield {service: f"127.0.0.1:{server.port}"}
    else:
        yield {}


def local_status(
    example: Example, manifests: Manifests, addresses: Mapping[str, str], directory: Path
) -> str:
    """`jobworker status` with the worker container's environment, as one line."""
    if example.broker is None:
        return "no queue: each pod's completion index picks its item"
    pod = LocalPod(
        manifests, manifests.get("Job"), directory / f"status-{uuid.uuid4().hex[:6]}", addresses=addresses
    )
    result = run_jobworker(["status", "--json"], env=pod.container("worker").env)
    if result.returncode != 0:
        if "does not exist" in result.stderr.decode():
            return "the queue does not exist yet (each pod's seed init container declares and fills it)"
        return "no status: " + result.stderr.decode().strip()
    return describe_status(json.loads(result.stdout))


def describe_status(status: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{key} {value}" for key, value in status.items() if key != "queue" and value is not None
    )


def run_local(example: Example, helm: Helm, directory: Path, use_docker: bool, out: TextIO) -> ExampleResult:
    helm.dependency_build(chart_path(example.chart))  # file:// dependencies: nothing is downloaded
    manifests = helm.template(chart_path(example.chart), example.values, release=example.release)
    job = manifests.get("Job")
    spec = job["spec"]
    result = ExampleResult(example, False, "", spec.get("completions"), spec.get("parallelism", 1))
    with local_broker(example, manifests, directory) as addresses:
        result.before = local_status(example, manifests, addresses, directory)
        out.write(f"  queue before: {result.before}\n")
        pods = directory / "pods"
        runner = (
            DockerPodRunner(manifests, job, pods, addresses)
            if use_docker
            else ProcessPodRunner(manifests, job, pods, addresses)
        )
        bar = ProgressBar(f"  {example.job_name}")
        wanted = result.completions or result.parallelism
        outcome = JobController(
            job, runner, on_progress=lambda p: bar.update(p.succeeded + p.failed, wanted)
        ).run()
        result.after = local_status(example, manifests, addresses, directory)
    result.stand_ins = sorted(getattr(runner, "stand_ins", ()))
    record(result, outcome)
    return result


def record(result: ExampleResult, outcome: JobOutcome) -> None:
    result.succeeded, result.reason = outcome.succeeded, outcome.reason
    if result.example.broker is None:
        result.after = f"completed indexes {outcome.completed_indexes}, failed {outcome.failed_indexes}"
    for pod in outcome.pods:
        processed = items_of(result.example, pod.container_logs)
        result.pods.append(PodReport(pod.name, pod.index, pod.exit_code, processed))


# --- on a cluster ------------------------------------------------------------------------------------
def cluster_problem() -> str | None:
    """Why no cluster can be used (one line), or None when the current context answers."""
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    result = subprocess.run(
        ["kubectl", "version", "--request-timeout=5s", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or '"serverVersion"' not in result.stdout:
        last = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Kubernetes cluster answers the current kube context ({last})"
    return None


def kubectl(*args: str, check: bool = True) -> str:
    result = subprocess.run(["kubectl", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def run_on_cluster(example: Example, helm: Helm, namespace: str, out: TextIO) -> ExampleResult:
    chart = chart_path(example.chart)
    helm.dependency_build(chart)
    context = ["--kube-context", kubectl("config", "current-context").strip()]
    with tempfile.TemporaryDirectory() as directory:
        values = Path(directory) / "values.yaml"
        values.write_text(json.dumps(dict(example.values)))  # JSON is YAML
        install = [
            str(helm.binary),
            "install",
            example.release,
            str(chart),
            "--namespace",
            namespace,
            "--values",
            str(values),
            "--wait",
            "--timeout",
            "10m",
            *context,
        ]
        subprocess.run(install, check=True)
    try:
        job = f"job/{example.job_name}"
        deadline = time.monotonic() + 600
        while True:
            state = json.loads(kubectl("get", job, "-n", namespace, "-o", "json"))
            conditions = {c["type"]: c["status"] for c in state.get("status", {}).get("conditions", [])}
            if conditions.get("Complete") == "True" or conditions.get("Failed") == "True":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{job} did not finish within 600 s")
            time.sleep(2)
        spec = state["spec"]
        result = ExampleResult(
            example,
            conditions.get("Complete") == "True",
            "Complete" if conditions.get("Complete") == "True" else "Failed",
            spec.get("completions"),
            spec.get("parallelism", 1),
        )
        pods = json.loads(
            kubectl("get", "pods", "-n", namespace, "-l", f"job-name={example.job_name}", "-o", "json")
        )
        for pod in pods["items"]:
            name = pod["metadata"]["name"]
            index = pod["metadata"].get("annotations", {}).get("batch.kubernetes.io/job-completion-index")
            logs = {"worker": kubectl("logs", name, "-n", namespace, "-c", "worker", check=False)}
            statuses = pod.get("status", {}).get("containerStatuses") or [{}]
            code = (statuses[0].get("state", {}).get("terminated") or {}).get("exitCode", -1)
            result.pods.append(PodReport(name, int(index) if index else None, code, items_of(example, logs)))
        result.after = f"Job status: {json.dumps(state.get('status', {}), sort_keys=True)}"
        out.write(f"  {result.after}\n")
        return result
    finally:
        subprocess.run(
            [str(helm.binary), "uninstall", example.release, "--namespace", namespace, *context],
            capture_output=True,
            check=False,
        )


# --- report ------------------------------------------------------------------------------------------
def print_example(result: ExampleResult, out: TextIO) -> None:
    for pod in sorted(result.pods, key=lambda p: (p.index is None, p.index or 0, p.name)):
        where = f"index {pod.index} " if pod.index is not None else ""
        out.write(f"  pod {pod.name:34} {where}exit {pod.exit_code}: {' '.join(pod.processed) or '-'}\n")
    if result.after:
        out.write(f"  queue after:  {result.after}\n")
    for stand_in in result.stand_ins:
        out.write(f"  (image {stand_in} is not on this machine: ran as a local process instead)\n")
    out.write(f"  Job: {result.reason}\n")


def print_summary(results: list[ExampleResult], out: TextIO) -> None:
    rows = [("example", "chart", "completions", "parallelism", "pods", "items", "result")]
    for result in results:
        items = sum(len(pod.processed) for pod in result.pods if pod.exit_code == 0)
        rows.append(
            (
                result.example.key,
                result.example.chart,
                str(result.completions or "-"),
                str(result.parallelism),
                str(len(result.pods)),
                str(items),
                result.reason,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for number, row in enumerate(rows):
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )
        if number == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")


def make_kind_cluster(name: str) -> None:
    """A kind cluster (it becomes the current kube context) holding the images `make images` built."""
    subprocess.run(["kind", "create", "cluster", "--name", name, "--wait", "180s"], check=True)
    subprocess.run(
        ["make", "--no-print-directory", "kind-load", f"KIND_CLUSTER={name}"], cwd=REPO, check=True
    )


def run_all_on_cluster(helm: Helm, out: TextIO) -> list[ExampleResult]:
    namespace = f"jobworker-demo-{uuid.uuid4().hex[:6]}"
    out.write(f"Running on the cluster of the current kube context, namespace {namespace}.\n")
    kubectl("create", "namespace", namespace)
    results = []
    try:
        for example in EXAMPLES:
            out.write(f"\n== {example.title} ({example.chart})\n")
            results.append(run_on_cluster(example, helm, namespace, out))
            print_example(results[-1], out)
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return results


def run_demo(mode: str = "auto", out: TextIO = sys.stdout, docker: bool | None = None) -> list[ExampleResult]:
    """Run the three examples; `mode` is auto (cluster if one answers), cluster or local.

    Locally, pods run as Docker containers when `docker` is true, as processes when false, and
    by default as containers exactly when a Docker engine answers.
    """
    helm = helm_binaries()[-1]
    problem = cluster_problem() if mode != "local" else "asked to run locally"
    kind_cluster = None
    if problem and mode != "local" and shutil.which("kind") and docker_problem() is None:
        kind_cluster = KIND_CLUSTER
        out.write(
            f"No cluster: {problem}. Docker and kind are here: making the kind cluster {kind_cluster} "
            "(deleted at the end) and loading the images into it.\n"
        )
        make_kind_cluster(kind_cluster)
        problem = cluster_problem()
    if mode == "cluster" and problem:
        raise RuntimeError(problem)
    results = []
    if problem is None:
        context = kubectl("config", "current-context").strip()
        if kind_cluster is None and context.startswith("kind-") and shutil.which("kind"):
            out.write(f"The current context is the kind cluster {context[5:]}: loading the images into it.\n")
            subprocess.run(
                ["make", "--no-print-directory", "kind-load", f"KIND_CLUSTER={context[5:]}"],
                cwd=REPO,
                check=True,
            )
        try:
            results = run_all_on_cluster(helm, out)
        finally:
            if kind_cluster:
                subprocess.run(
                    ["kind", "delete", "cluster", "--name", kind_cluster], capture_output=True, check=False
                )
    else:
        engine_problem = docker_problem() if docker is None else (None if docker else "--processes")
        how = (
            f"pods run as local processes ({engine_problem})"
            if engine_problem
            else "each pod's containers run as Docker containers of the images `make images` built"
        )
        out.write(
            f"No cluster: {problem}. Running the examples locally instead: `helm template` renders the "
            "charts and a test harness (tests/support/jobcontroller.py) stands in for the Job "
            f"controller; {how}; the brokers run as local processes.\n"
        )
        for example in EXAMPLES:
            out.write(f"\n== {example.title} ({example.chart})\n")
            with tempfile.TemporaryDirectory(prefix=f"demo-{example.key}-") as directory:
                results.append(run_local(example, helm, Path(directory), engine_problem is None, out))
            print_example(results[-1], out)
    out.write("\n")
    print_summary(results, out)
    return results
