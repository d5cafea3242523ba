"""What only a cluster can show: pods and brokers lost in the middle of a Job.

Each scenario disturbs a running Job the way a cluster does (a deleted pod, an eviction through the
Eviction API as `kubectl drain` makes it, a broker pod deleted and rescheduled), then checks from
the queue itself what became of every item, and from the Job what the real Job controller counted.
"""

import time
from collections import Counter

import pykube

from tests.e2e.cluster import (
    crash_container,
    evict,
    install_job,
    job_pods,
    pod_logs,
    processed_items,
    queue_status,
    release_stateful_sets,
    wait_for_job_to_complete,
    wait_for_log_line,
    wait_for_processed,
)
from tests.e2e.conftest import BROKER_TIMEOUT, JOB_TIMEOUT

# Each item takes a while, so that a disruption lands in the middle of the run.
SLOW_ITEM = 'item=$(cat); echo "started:$item"; sleep {seconds}; printf "processed:%s\\n" "$item"'


def slow_command(seconds: float) -> list[str]:
    return ["sh", "-c", SLOW_ITEM.format(seconds=seconds)]


def test_fine_a_deleted_worker_pod_hands_its_items_back_and_the_job_completes(helm, kube_client):
    items = [f"item-{number:02}" for number in range(16)]
    values = {"items": items, "command": slow_command(1), "parallelism": 2, "backoffLimit": 2}
    job = install_job(helm, kube_client, "fine-queue-job", "fine-deleted", values, timeout=BROKER_TIMEOUT)
    running = wait_for_processed(kube_client, job, 3, JOB_TIMEOUT)

    running[0].delete()  # graceful, as `kubectl delete pod`: SIGTERM, then the grace period

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)
    status = queue_status(kube_client, job)
    assert (status["pending"], status["in_flight"], status["failed"]) == (0, 0, 0), status
    assert status["done"] == len(items), status  # the deleted pod's items too, once each
    survivors = Counter(item for pod in job_pods(kube_client, job) for item in processed_items(pod_logs(pod)))
    assert set(survivors) <= set(items)
    assert job.obj["status"].get("failed") == 1, job.obj["status"]  # the deleted pod (exit 143) counts


def test_coarse_an_evicted_pod_hands_its_message_back_uncounted(helm, kube_client):
    """podFailurePolicy ignores the disruption: the Job counts no failed pod, and the message,
    handed back when the grace period ran out, is not charged an attempt (with maxAttempts 1 a
    charged attempt would dead-letter it)."""
    values = {
        "items": ["long-item"],
        "command": slow_command(20),
        "maxAttempts": 1,
        "graceSeconds": 2,
        "terminationGracePeriodSeconds": 10,
        "backoffLimit": 0,
    }
    job = install_job(helm, kube_client, "coarse-queue-job", "coarse-evicted", values, timeout=BROKER_TIMEOUT)
    first = _first_running_pod(kube_client, job)
    wait_for_log_line(first, "started:long-item", JOB_TIMEOUT)

    evict(kube_client, first)

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)
    status = job.obj["status"]
    assert status.get("succeeded") == 1, status
    assert status.get("failed", 0) == 0, f"the eviction was counted as a failure: {status}"
    pods = job_pods(kube_client, job)
    assert first.name not in [pod.name for pod in pods], "the evicted pod was not replaced"
    assert [processed_items(pod_logs(pod)) for pod in pods] == [["long-item"]]
    queue = queue_status(kube_client, job)
    assert (queue["ready"], queue["failed"]) == (0, 0), queue


def test_fine_the_redis_pod_deleted_mid_run_loses_nothing_with_persistence(helm, kube_client):
    items = [f"item-{number:02}" for number in range(24)]
    values = {
        "items": items,
        "command": slow_command(0.5),
        "parallelism": 2,
        "backoffLimit": 2,
        "redis": {"persistence": {"enabled": True, "size": "64Mi"}},
    }
    job = install_job(helm, kube_client, "fine-queue-job", "fine-broker-lost", values, timeout=BROKER_TIMEOUT)
    wait_for_processed(kube_client, job, 4, JOB_TIMEOUT)
    (broker_set,) = release_stateful_sets(kube_client, helm.namespace, "fine-broker-lost")
    broker = pykube.Pod.objects(kube_client, namespace=helm.namespace).get_by_name(f"{broker_set}-0")
    lost_uid = broker.obj["metadata"]["uid"]

    broker.delete()
    _wait_for_new_pod(kube_client, helm.namespace, broker.name, lost_uid, BROKER_TIMEOUT)

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)
    status = queue_status(kube_client, job)
    assert (status["pending"], status["in_flight"], status["failed"]) == (0, 0, 0), status
    assert status["done"] == len(items), status
    processed = Counter(item for pod in job_pods(kube_client, job) for item in processed_items(pod_logs(pod)))
    assert set(processed) == set(items), sorted(set(items) - set(processed))


def test_fine_redis_server_crashing_mid_run_loses_nothing_by_default(helm, kube_client):
    """The bundled Redis with its defaults (no PersistentVolumeClaim): redis-server SIGKILLed, as
    by the OOM killer, restarts in the same pod and replays its append-only file from the pod's
    emptyDir, so the queue, its leases and its counts are all still there."""
    items = [f"item-{number:02}" for number in range(24)]
    values = {"items": items, "command": slow_command(0.5), "parallelism": 2, "backoffLimit": 0}
    job = install_job(helm, kube_client, "fine-queue-job", "fine-redis-crash", values, timeout=BROKER_TIMEOUT)
    wait_for_processed(kube_client, job, 4, JOB_TIMEOUT)
    (broker_set,) = release_stateful_sets(kube_client, helm.namespace, "fine-redis-crash")
    broker = pykube.Pod.objects(kube_client, namespace=helm.namespace).get_by_name(f"{broker_set}-0")

    restarts = crash_container(broker, "redis")

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)
    broker.reload()
    (redis_status,) = broker.obj["status"]["containerStatuses"]
    assert redis_status["restartCount"] == restarts + 1, redis_status
    assert job.obj["status"].get("failed", 0) == 0, job.obj["status"]  # no worker saw a lost queue
    status = queue_status(kube_client, job)
    assert (status["pending"], status["in_flight"], status["failed"]) == (0, 0, 0), status
    assert status["done"] == len(items), status
    processed = Counter(item for pod in job_pods(kube_client, job) for item in processed_items(pod_logs(pod)))
    assert set(processed) == set(items), sorted(set(items) - set(processed))


def _first_running_pod(kube_client, job: pykube.Job, timeout: int = JOB_TIMEOUT) -> pykube.Pod:
    deadline = time.monotonic() + timeout
    while True:
        for pod in job_pods(kube_client, job):
            if pod.obj.get("status", {}).get("phase") == "Running":
                return pod
        assert time.monotonic() < deadline, f"no pod of {job.name} runs after {timeout} s"
        time.sleep(1)


def _wait_for_new_pod(kube_client, namespace: str, name: str, old_uid: str, timeout: int) -> None:
    """Wait until the StatefulSet's pod `name` is a new one (another uid) and Ready."""
    deadline = time.monotonic() + timeout
    while True:
        pod = pykube.Pod.objects(kube_client, namespace=namespace).get_or_none(name=name)
        if pod is not None and pod.obj["metadata"]["uid"] != old_uid and pod.ready:
            return
        assert time.monotonic() < deadline, f"pod {name} was not back within {timeout} s"
        time.sleep(1)
