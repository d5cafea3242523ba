#!/usr/bin/env python3
"""`make demo`: the Kubernetes docs' three batch examples, run with these charts on a real cluster.

The cluster is, in this order (one line says which and why):
  1. the one of the current kube context, when its API server answers;
  2. a kind cluster made for the demo (images loaded, deleted afterwards), when kind and a Docker
     engine are here and kind's node image can be had;
  3. the local cluster of `make cluster` on this machine (needs root; started, or reused).
With IMAGE_MAP (or on the local cluster) the charts' images are pointed at the stand-ins for the
official images. Each example is a `helm install` of the chart; the demo waits for the Job and
prints, from what the cluster reports, each pod with the items it processed (the Indexed Job: its
index and output), the Job's status, and a summary; then it uninstalls. Exit status 0 when all
three Jobs complete.

Usage: scripts/demo.py [--where auto|current|kind|local] [--helm PATH] [--kubectl PATH] [--local-kubectl PATH]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "cluster"))  # for localcluster.standins

from localcluster.standins import ImageMap, stand_in_values  # noqa: E402

FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
WORDS = ["foo", "bar", "baz", "qux", "xyz"]
KIND_CLUSTER = "jobworker-demo"
KIND_NODE_IMAGE = "kindest/node:v1.35.8"  # kind v0.33.0's node image of the Kubernetes we test with
LOCAL_KUBECONFIG = REPO / ".cluster" / "kubeconfig"
LOCAL_IMAGE_MAP = REPO / ".cluster" / "image-map"
JOB_TIMEOUT = 600
PROCESSED = re.compile(r"^processed (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    chart: str
    values: dict[str, Any]


EXAMPLES = (
    Example(
        "fine",
        "Fine-grained work queue: a Redis list of 10 items, 2 workers leasing many each",
        "fine-queue-job",
        {"items": FRUITS, "parallelism": 2, "command": ["echo", "processed", "{item}"]},
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
    ),
)


@dataclass(frozen=True)
class Cluster:
    """Where the examples run: a kubeconfig, and the image map when official images cannot be pulled."""

    kubeconfig: str | None
    kubectl: str
    images: ImageMap | None = None


@dataclass
class PodReport:
    name: str
    index: int | None
    exit_code: int | None
    output: list[str]  # the items it processed (fine, coarse), or its program's output (indexed)


@dataclass
class ExampleResult:
    example: Example
    succeeded: bool
    status: dict[str, Any]
    completions: int | None
    parallelism: int
    pods: list[PodReport] = field(default_factory=list)


def run(command: list[str], check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed: {result.stderr.strip()[-500:]}")
    return result


def kubectl(cluster: Cluster, *args: str, check: bool = True) -> str:
    config = [f"--kubeconfig={cluster.kubeconfig}"] if cluster.kubeconfig else []
    return run([cluster.kubectl, *config, *args], check=check).stdout


# --- choosing the cluster --------------------------------------------------------------------------
def current_context_problem(kubectl_binary: str | None) -> str | None:
    """Why the current kube context cannot be used (one line), or None when it answers."""
    if kubectl_binary is None:
        return "no kubectl to ask the current kube context"
    result = run([kubectl_binary, "version", "--request-timeout=5s", "-o", "json"], check=False)
    if result.returncode != 0 or '"serverVersion"' not in result.stdout:
        last = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"the current kube context does not answer ({last})"
    return None


def _server(kubectl_binary: str, kubeconfig: Path | None = None) -> str:
    """The API server's address in the current context (of `kubeconfig` when given)."""
    config = [f"--kubeconfig={kubeconfig}"] if kubeconfig else []
    command = [
        kubectl_binary,
        *config,
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]
    return run(command, check=False).stdout.strip()


def kind_problem() -> str | None:
    """Why kind cannot make a cluster here (one line), or None."""
    if shutil.which("kind") is None:
        return "kind is not installed"
    if run(["docker", "info"], check=False).returncode != 0:
        return "no Docker engine answers"
    if run(["docker", "image", "inspect", KIND_NODE_IMAGE], check=False).returncode == 0:
        return None
    pulled = run(["timeout", "120", "docker", "pull", KIND_NODE_IMAGE], check=False)
    return None if pulled.returncode == 0 else f"kind's node image {KIND_NODE_IMAGE} cannot be pulled"


def choose_cluster(
    where: str, kubectl_binary: str | None, local_kubectl: str, make: list[str], out
) -> tuple[Cluster, str | None]:
    """The cluster to use and, for a kind cluster made here, its name (to delete afterwards)."""
    current = current_context_problem(kubectl_binary) if where in ("auto", "current") else "not asked for"
    if current is None:
        images = os.environ.get("IMAGE_MAP")
        if (
            images is None
            and LOCAL_KUBECONFIG.exists()
            and _server(kubectl_binary) == _server(kubectl_binary, LOCAL_KUBECONFIG)
        ):
            images = str(LOCAL_IMAGE_MAP)  # the local cluster: its images are the stand-ins
        which = " (the local cluster: images from its stand-ins)" if images else ""
        out.write(f"Cluster: the current kube context, which answers{which}.\n")
        return Cluster(None, kubectl_binary, ImageMap.read(Path(images)) if images else None), None
    if where == "current":
        raise RuntimeError(current)
    kind = kind_problem() if where in ("auto", "kind") else "not asked for"
    if kind is None:
        out.write(f"Cluster: a kind cluster {KIND_CLUSTER} made for the demo ({current}).\n")
        kubeconfig = Path(tempfile.mkdtemp(prefix="demo-kind-")) / "kubeconfig"
        run(["kind", "create", "cluster", "--name", KIND_CLUSTER, "--image", KIND_NODE_IMAGE,
             "--kubeconfig", str(kubeconfig), "--wait", "180s"])  # fmt: skip
        run([*make, "kind-load", f"KIND_CLUSTER={KIND_CLUSTER}"], cwd=REPO)
        return Cluster(str(kubeconfig), kubectl_binary or "kubectl"), KIND_CLUSTER
    if where == "kind":
        raise RuntimeError(kind)
    out.write(f"Cluster: the local cluster of `make cluster` ({current}; {kind}).\n")
    out.flush()
    subprocess.run([*make, "cluster"], cwd=REPO, check=True, stdout=sys.stderr)
    return Cluster(str(LOCAL_KUBECONFIG), local_kubectl, ImageMap.read(LOCAL_IMAGE_MAP)), None


# --- one example -----------------------------------------------------------------------------------
def run_example(example: Example, cluster: Cluster, helm: str, namespace: str, out) -> ExampleResult:
    chart = REPO / "charts" / example.chart
    run([helm, "dependency", "build", "--skip-refresh", str(chart)])  # file://: nothing is downloaded
    release = f"demo-{example.key}"
    values = (
        example.values if cluster.images is None else stand_in_values(chart, example.values, cluster.images)
    )
    config = [f"--kubeconfig={cluster.kubeconfig}"] if cluster.kubeconfig else []
    with tempfile.TemporaryDirectory() as directory:
        values_file = Path(directory) / "values.json"  # JSON is YAML
        values_file.write_text(json.dumps(values))
        run([helm, "install", release, str(chart), "--namespace", namespace, "--values", str(values_file),
             "--wait", "--timeout", "10m", *config])  # fmt: skip
    try:
        job = wait_for_job(cluster, namespace, f"{release}-{example.chart}")
        spec, status = job["spec"], job.get("status", {})
        result = ExampleResult(
            example,
            has_condition(status, "Complete"),
            status,
            spec.get("completions"),
            spec.get("parallelism", 1),
        )
        result.pods = pod_reports(example, cluster, namespace, job["metadata"]["name"])
        return result
    finally:
        run([helm, "uninstall", release, "--namespace", namespace, *config], check=False)


def has_condition(status: dict[str, Any], kind: str) -> bool:
    return any(c["type"] == kind and c["status"] == "True" for c in status.get("conditions") or [])


def wait_for_job(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        job = json.loads(kubectl(cluster, "get", "job", name, "-n", namespace, "-o", "json"))
        status = job.get("status", {})
        if has_condition(status, "Complete") or has_condition(status, "Failed"):
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {name} did not finish within {JOB_TIMEOUT} s")
        time.sleep(2)


def pod_reports(example: Example, cluster: Cluster, namespace: str, job: str) -> list[PodReport]:
    selector = f"batch.kubernetes.io/job-name={job}"
    pods = json.loads(kubectl(cluster, "get", "pods", "-n", namespace, "-l", selector, "-o", "json"))["items"]
    reports = []
    for pod in pods:
        name = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]["name"]
        log = kubectl(cluster, "logs", name, "-n", namespace, "-c", container, check=False)
        index = pod["metadata"].get("annotations", {}).get("batch.kubernetes.io/job-completion-index")
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        exit_code = (statuses[0].get("state", {}).get("terminated") or {}).get("exitCode")
        output = log.split() if example.key == "indexed" else PROCESSED.findall(log)
        reports.append(PodReport(name, int(index) if index is not None else None, exit_code, output))
    return sorted(reports, key=lambda pod: (pod.index is None, pod.index or 0, pod.name))


# --- report ----------------------------------------------------------------------------------------
def print_example(result: ExampleResult, out) -> None:
    for pod in result.pods:
        where = f"index {pod.index} " if pod.index is not None else ""
        out.write(f"  pod {pod.name:36} {where}exit {pod.exit_code}: {' '.join(pod.output) or '-'}\n")
    counts = {
        key: result.status[key] for key in ("succeeded", "failed", "completedIndexes") if key in result.status
    }
    conditions = [c["type"] for c in result.status.get("conditions") or [] if c["status"] == "True"]
    out.write(f"  Job: {json.dumps(counts)}, conditions {', '.join(conditions)}\n")


def print_summary(results: list[ExampleResult], out) -> None:
    rows = [("example", "chart", "completions", "parallelism", "pods", "items", "result")]
    for result in results:
        items = sum(len(pod.output) for pod in result.pods if pod.exit_code == 0)
        rows.append((result.example.key, result.example.chart, str(result.completions or "-"),
                     str(result.parallelism), str(len(result.pods)), str(items),
                     "Complete" if result.succeeded else "Failed"))  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for number, row in enumerate(rows):
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )
        if number == 0:
            out.write("  ".join("-" * width for width in widths) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--where", choices=("auto", "current", "kind", "local"), default="auto",
                        help="which cluster: the first that works (auto), or only this one")  # fmt: skip
    parser.add_argument("--helm", default=os.environ.get("HELM") or shutil.which("helm") or "helm")
    parser.add_argument("--kubectl", default=shutil.which("kubectl"), help="kubectl for the current context")
    parser.add_argument(
        "--local-kubectl", default="kubectl", help="the local cluster's kubectl (make cluster)"
    )
    parser.add_argument("--make", default="make", help="make, for `make cluster` and `make kind-load`")
    args = parser.parse_args()
    out = sys.stdout
    make = [args.make, "--no-print-directory"]
    kind_cluster = None
    try:
        cluster, kind_cluster = choose_cluster(args.where, args.kubectl, args.local_kubectl, make, out)
        namespace = f"jobworker-demo-{uuid.uuid4().hex[:6]}"
        kubectl(cluster, "create", "namespace", namespace)
        results = []
        try:
            for example in EXAMPLES:
                out.write(f"\n== {example.title} ({example.chart})\n")
                results.append(run_example(example, cluster, args.helm, namespace, out))
                print_example(results[-1], out)
        finally:
            kubectl(cluster, "delete", "namespace", namespace, "--wait=false", check=False)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    finally:
        if kind_cluster:
            run(["kind", "delete", "cluster", "--name", kind_cluster], check=False)
    out.write("\n")
    print_summary(results, out)
    return 0 if all(result.succeeded for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
