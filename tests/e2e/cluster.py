"""Helpers for the cluster end-to-end tests: finding the cluster, waiting for Jobs, reading pods.

pytest-helm-charts gives the cluster connection (`kube_cluster`), namespaces and waits for
StatefulSets; what it lacks or gets wrong for batch Jobs lives here:

- its `wait_for_jobs_to_complete` looks only at a Job's first condition, which on Kubernetes 1.31+
  is SuccessCriteriaMet (or FailureTarget), not Complete: `job_complete` looks at all of them, and
  `job_failed` lets a wait stop at the first Failed=True instead of running into its timeout;
- pods of a Job, their logs and their completion index;
- running a one-off command (`jobworker status`) in a pod made from a Job's own pod template, so
  that it reaches the broker exactly as the workers did, whatever the chart named its Secrets.
"""

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pykube
import pytest
from pytest_helm_charts.errors import ObjectStatusError
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run
from pytest_helm_charts.utils import wait_for_objects_condition

if TYPE_CHECKING:
    from tests.e2e.helm import Helm

# The label every pod of a Job carries (Kubernetes 1.27+; the oldest we support is 1.29).
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
# Labels the Job controller adds to its pod template: a pod that kept them could be adopted by it.
CONTROLLER_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid", JOB_NAME_LABEL, "job-name")
INSTANCE_LABEL = "app.kubernetes.io/instance"
HOOK_ANNOTATION = "helm.sh/hook"

# A test program prints this marker and the item it got, so that the logs say what was processed
# whatever the worker's own log format is.
PROCESSED_MARKER = "processed:"
_PROCESSED = re.compile(rf"^{re.escape(PROCESSED_MARKER)}(.*)$", re.MULTILINE)


def kubeconfig_path(option: str | None) -> str | None:
    """The kubeconfig to use: the --kubeconfig option, else the first file in KUBECONFIG."""
    if option:
        return option
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return first or None


def cluster_unavailable_reason(kubeconfig: str | None, timeout: float = 5) -> str | None:
    """Why no cluster can be used (one line), or None when its API server answers."""
    if not kubeconfig:
        return "no Kubernetes cluster: neither --kubeconfig nor KUBECONFIG is set"
    if not Path(kubeconfig).is_file():
        return f"no Kubernetes cluster: the kubeconfig {kubeconfig} does not exist"
    try:
        config = pykube.KubeConfig.from_file(kubeconfig)
    except Exception as error:  # noqa: BLE001 - any parse problem means the same: no usable cluster
        return f"no Kubernetes cluster: cannot read the kubeconfig {kubeconfig}: {error}"
    server = config.cluster.get("server", "?")
    client = pykube.HTTPClient(config, timeout=timeout)
    try:
        client.version  # noqa: B018 - GET /version is the reachability check
    except Exception as error:  # noqa: BLE001 - connection refused, TLS, DNS, 401: all mean unreachable
        cause = getattr(error.args[0], "reason", error) if error.args else error  # urllib3's MaxRetryError
        return (
            f"no Kubernetes cluster: the API server {server} (from {kubeconfig}) is unreachable: "
            f"{type(cause).__name__}: {cause}"
        )
    finally:
        client.session.close()
    return None


def _conditions(job: dict[str, Any]) -> list[dict[str, Any]]:
    return (job.get("status") or {}).get("conditions") or []


def has_condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The Job's condition of this type with status True, wherever it is in the list."""
    for condition in _conditions(job):
        if condition.get("type") == kind and condition.get("status") == "True":
            return condition
    return None


def job_complete(job: pykube.Job) -> bool:
    """Complete=True anywhere among the conditions (SuccessCriteriaMet comes first on 1.31+)."""
    return has_condition(job.obj, "Complete") is not None


def job_failed(job: pykube.Job) -> bool:
    """Failed=True anywhere among the conditions: the Job will not complete any more."""
    return has_condition(job.obj, "Failed") is not None


def describe_job(job: dict[str, Any]) -> str:
    """One line with the Job's counters and conditions, for assertion messages."""
    status = job.get("status") or {}
    conditions = ", ".join(
        f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})" for c in _conditions(job)
    )
    counters = {key: status.get(key) for key in ("active", "succeeded", "failed") if key in status}
    return f"Job {job['metadata']['name']}: {counters} conditions: {conditions or 'none'}"


def _wait(
    client: pykube.HTTPClient,
    name: str,
    namespace: str,
    *,
    until: Callable[[pykube.Job], bool],
    stop: Callable[[pykube.Job], bool],
    timeout: int,
    what: str,
) -> pykube.Job:
    try:
        (job,) = wait_for_objects_condition(
            client,
            pykube.Job,
            [name],
            namespace,
            until,
            timeout,
            missing_ok=True,
            failure_condition_func=stop,
        )
    except ObjectStatusError as error:
        job = pykube.Job.objects(client, namespace=namespace).get_by_name(name)
        raise AssertionError(f"{describe_job(job.obj)} ({error.msg}); waited for it to {what}") from None
    except TimeoutError:
        job = pykube.Job.objects(client, namespace=namespace).get_or_none(name=name)
        state = describe_job(job.obj) if job else f"Job {name} does not exist"
        raise AssertionError(f"{state}: did not {what} within {timeout} s") from None
    return job


def wait_for_job_to_complete(
    client: pykube.HTTPClient, name: str, namespace: str, timeout: int
) -> pykube.Job:
    """Wait for Complete=True; stop at once with the Job's conditions when Failed=True appears."""
    return _wait(
        client, name, namespace, until=job_complete, stop=job_failed, timeout=timeout, what="complete"
    )


def wait_for_job_to_fail(client: pykube.HTTPClient, name: str, namespace: str, timeout: int) -> pykube.Job:
    """Wait for Failed=True; stop at once when the Job completes instead."""
    return _wait(client, name, namespace, until=job_failed, stop=job_complete, timeout=timeout, what="fail")


def release_jobs(client: pykube.HTTPClient, namespace: str, release: str) -> list[pykube.Job]:
    """The Jobs of a Helm release that are not hooks (`helm test` pods and hook Jobs are not work)."""
    jobs = pykube.Job.objects(client, namespace=namespace).filter(selector={INSTANCE_LABEL: release})
    return [job for job in jobs if HOOK_ANNOTATION not in job.annotations]


def worker_job(client: pykube.HTTPClient, namespace: str, release: str) -> pykube.Job:
    """The release's one worker Job: besides hooks, no chart makes another."""
    jobs = release_jobs(client, namespace, release)
    names = [job.name for job in jobs]
    assert len(jobs) == 1, f"expected one worker Job in release {release}, found {names}"
    return jobs[0]


def wait_for_worker_job(client: pykube.HTTPClient, namespace: str, release: str, timeout: int) -> pykube.Job:
    """The worker Job, once the release has created it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return worker_job(client, namespace, release)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def release_stateful_sets(client: pykube.HTTPClient, namespace: str, release: str) -> list[str]:
    """Names of the release's StatefulSets (its broker: redis or rabbitmq)."""
    sets = pykube.StatefulSet.objects(client, namespace=namespace).filter(selector={INSTANCE_LABEL: release})
    return [stateful_set.name for stateful_set in sets]


def install_job(
    helm: "Helm", client: pykube.HTTPClient, chart: str, release: str, values: dict, *, timeout: int
) -> pykube.Job:
    """`helm install` of a job chart, and its worker Job once the broker it bundles (if any) runs."""
    helm.install(release, chart, values)
    brokers = release_stateful_sets(client, helm.namespace, release)
    if brokers:
        wait_for_stateful_sets_to_run(client, brokers, helm.namespace, timeout)
    return wait_for_worker_job(client, helm.namespace, release, timeout)


def job_pods(client: pykube.HTTPClient, job: pykube.Job) -> list[pykube.Pod]:
    """Every pod the Job made (finished ones too), oldest first."""
    pods = pykube.Pod.objects(client, namespace=job.namespace).filter(selector={JOB_NAME_LABEL: job.name})
    return sorted(pods, key=lambda pod: pod.obj["metadata"]["creationTimestamp"])


def pod_logs(pod: pykube.Pod, container: str | None = None) -> str:
    """A container's log (stdout and stderr as the kubelet keeps them); the first one by default."""
    return pod.logs(container=container or pod.obj["spec"]["containers"][0]["name"])


def completion_index(pod: pykube.Pod) -> int:
    """The completion index of a pod of an Indexed Job."""
    return int(pod.annotations[COMPLETION_INDEX_ANNOTATION])


def processed_items(log: str) -> list[str]:
    """The items a test program reported with PROCESSED_MARKER, in order."""
    return [match.strip() for match in _PROCESSED.findall(log)]


@dataclass
class PodRun:
    """What a one-off pod did: its phase, its main container's exit code and its log."""

    phase: str
    exit_code: int | None
    log: str


def run_in_job_pod(
    client: pykube.HTTPClient, job: pykube.Job, command: Sequence[str], timeout: int = 120
) -> PodRun:
    """Run `command` in a pod made from the Job's pod template (same image, env, Secrets, labels).

    The first container's command is replaced and its args dropped; the Job controller's labels are
    removed so that the Job never adopts the pod. The pod is deleted afterwards.
    """
    template = job.obj["spec"]["template"]
    metadata = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k not in CONTROLLER_LABELS}
    spec = dict(template["spec"])
    containers = [dict(container) for container in spec["containers"]]
    containers[0]["command"] = list(command)
    containers[0].pop("args", None)
    containers[0].pop("livenessProbe", None)
    containers[0].pop("readinessProbe", None)
    spec.update(containers=containers[:1], restartPolicy="Never")
    pod = pykube.Pod(
        client,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"generateName": f"{job.name}-run-", "namespace": job.namespace, "labels": labels},
            "spec": spec,
        },
    )
    pod.create()
    try:
        deadline = time.monotonic() + timeout
        while True:
            pod.reload()
            phase = pod.obj.get("status", {}).get("phase", "Pending")
            if phase in {"Succeeded", "Failed"}:
                break
            assert time.monotonic() < deadline, f"pod {pod.name} still {phase} after {timeout} s"
            time.sleep(1)
        statuses = pod.obj["status"].get("containerStatuses") or []
        main = next((s for s in statuses if s["name"] == containers[0]["name"]), None)
        terminated = (main or {}).get("state", {}).get("terminated") or {}
        return PodRun(phase, terminated.get("exitCode"), pod_logs(pod, containers[0]["name"]))
    finally:
        pod.delete()


def queue_status(client: pykube.HTTPClient, job: pykube.Job) -> dict[str, Any]:
    """`jobworker status --json` of the Job's queue, run with the Job's own environment."""
    run = run_in_job_pod(client, job, ["jobworker", "status", "--json"])
    assert run.exit_code == 0, f"jobworker status exited {run.exit_code} ({run.phase}):\n{run.log}"
    reports = []
    for line in run.log.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                reports.append(json.loads(line))
    reports = [report for report in reports if isinstance(report, dict) and "queue" in report]
    assert reports, f"no status report (JSON with a 'queue' key) from jobworker status:\n{run.log}"
    return reports[-1]


def wait_for_processed(
    client: pykube.HTTPClient, job: pykube.Job, count: int, timeout: int
) -> list[pykube.Pod]:
    """Wait until the Job's running pods together reported `count` processed items; those pods."""
    deadline = time.monotonic() + timeout
    while True:
        running = [
            pod for pod in job_pods(client, job) if pod.obj.get("status", {}).get("phase") == "Running"
        ]
        reported = 0
        for pod in running:
            with contextlib.suppress(pykube.exceptions.HTTPError):  # a container not started yet
                reported += len(processed_items(pod_logs(pod)))
        if reported >= count:
            return running
        assert time.monotonic() < deadline, (
            f"{describe_job(job.obj)}: {reported} of {count} items in {timeout} s"
        )
        time.sleep(1)
        job.reload()


def wait_for_log_line(pod: pykube.Pod, text: str, timeout: int, container: str | None = None) -> None:
    """Wait until the pod's container logged a line containing `text`."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(pykube.exceptions.HTTPError):
            if text in pod_logs(pod, container):
                return
        assert time.monotonic() < deadline, f"pod {pod.name} did not log {text!r} within {timeout} s"
        time.sleep(1)


def evict(client: pykube.HTTPClient, pod: pykube.Pod) -> None:
    """Evict the pod through the Eviction API, as `kubectl drain` does."""
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod.name, "namespace": pod.namespace},
    }
    response = client.post(
        url=f"pods/{pod.name}/eviction", namespace=pod.namespace, data=json.dumps(eviction)
    )
    response.raise_for_status()


def crash_container(pod: pykube.Pod, container: str) -> int:
    """SIGKILL every process of a running container, as the kernel's OOM killer does, and return
    the container's restart count before the crash.

    Only from the node itself: a process in the container cannot do it (the kernel ignores a
    SIGKILL sent to a PID namespace's init from inside it), and the API has no verb for it. The
    container's processes are found in its cgroup (the kubelet's cgroupfs layout, cgroup v1), so
    this works on the local cluster (`make cluster`), whose node is this machine; elsewhere the
    test is skipped.
    """
    pod.reload()
    (status,) = [s for s in pod.obj["status"]["containerStatuses"] if s["name"] == container]
    container_id = status["containerID"].split("://", 1)[1]
    found = list(Path("/sys/fs/cgroup/pids").glob(f"kubepods*/**/{container_id}/cgroup.procs"))
    if not found:
        pytest.skip(
            "crashing a container needs the node's processes: run on the local cluster (make cluster)"
        )
    pids = [int(pid) for pid in found[0].read_text().split()]
    assert pids, f"container {container} of {pod.name} has no processes"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return status["restartCount"]


def wait_until_gone(client: pykube.HTTPClient, kind: type, name: str, namespace: str, timeout: int) -> None:
    deadline = time.monotonic() + timeout
    while kind.objects(client, namespace=namespace).get_or_none(name=name) is not None:
        assert time.monotonic() < deadline, f"{kind.__name__} {name} still exists after {timeout} s"
        time.sleep(1)
