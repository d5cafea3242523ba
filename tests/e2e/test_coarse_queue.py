"""The coarse-grained work queue on a cluster: charts/coarse-queue-job with its rabbitmq dependency."""

from collections import Counter

from tests.e2e.cluster import (
    install_job,
    job_pods,
    pod_logs,
    processed_items,
    queue_status,
    wait_for_job_to_complete,
)
from tests.e2e.conftest import BROKER_TIMEOUT, JOB_TIMEOUT
from tests.e2e.helm import load_values

CHART = "coarse-queue-job"


def test_one_pod_per_item(helm, kube_client):
    values = load_values(CHART)
    items = [str(item) for item in values["items"]]
    job = install_job(helm, kube_client, CHART, "coarse", values, timeout=BROKER_TIMEOUT)

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)

    assert job.obj["spec"]["completions"] == len(items)
    pods = job_pods(kube_client, job)
    per_pod = {pod.name: processed_items(pod_logs(pod)) for pod in pods}
    assert len(pods) == len(items), per_pod
    assert all(len(processed) == 1 for processed in per_pod.values()), per_pod
    assert Counter(item for processed in per_pod.values() for item in processed) == Counter(items)
    # AMQP reports no unacknowledged count (`unacked` is null); with every worker gone, no consumer
    # is left to hold a message, so ready and consumers together say the queue is finished.
    status = queue_status(kube_client, job)
    assert (status["ready"], status["consumers"], status["failed"]) == (0, 0, 0), status
    tested = helm.test("coarse")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_failing_item_is_dead_lettered_and_completions_still_match(helm, kube_client):
    values = load_values(f"{CHART}-failing")
    items = [str(item) for item in values["items"]]
    job = install_job(helm, kube_client, CHART, "coarse-poison", values, timeout=BROKER_TIMEOUT)

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)

    assert job.obj["status"].get("succeeded") == len(items), job.obj["status"]
    # maxAttempts 2: the poison item's first pod exited 5 (requeued, counted as failed), its
    # second moved it to the dead-letter queue and exited 0
    assert job.obj["status"].get("failed", 0) >= 1, job.obj["status"]
    status = queue_status(kube_client, job)
    assert status["failed"] == 1, status  # in the dead-letter queue Q.failed
    assert (status["ready"], status["consumers"]) == (0, 0), status
    processed = Counter(item for pod in job_pods(kube_client, job) for item in processed_items(pod_logs(pod)))
    assert processed == Counter(item for item in items if item != "poison")
