"""The fine-grained work queue on a cluster: charts/fine-queue-job with its redis dependency."""

from collections import Counter

from tests.e2e.cluster import (
    has_condition,
    install_job,
    job_pods,
    pod_logs,
    processed_items,
    queue_status,
    wait_for_job_to_complete,
    wait_for_job_to_fail,
)
from tests.e2e.conftest import BROKER_TIMEOUT, JOB_TIMEOUT
from tests.e2e.helm import load_values

CHART = "fine-queue-job"


def test_every_item_is_processed_once_by_parallelism_pods(helm, kube_client):
    values = load_values(CHART)
    items = [str(item) for item in values["items"]]
    job = install_job(helm, kube_client, CHART, "fine", values, timeout=BROKER_TIMEOUT)

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)

    pods = job_pods(kube_client, job)
    assert len(pods) == values["parallelism"], [pod.name for pod in pods]
    processed = Counter(item for pod in pods for item in processed_items(pod_logs(pod)))
    assert processed == Counter(items)
    assert job.obj["status"].get("succeeded") == values["parallelism"]
    status = queue_status(kube_client, job)
    assert (status["pending"], status["in_flight"], status["failed"]) == (0, 0, 0), status
    assert status["done"] == len(items), status
    tested = helm.test("fine")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_failing_item_ends_in_the_failed_list_and_fails_the_job(helm, kube_client):
    values = load_values(f"{CHART}-failing")
    items = [str(item) for item in values["items"]]
    job = install_job(helm, kube_client, CHART, "fine-poison", values, timeout=BROKER_TIMEOUT)

    job = wait_for_job_to_fail(kube_client, job.name, helm.namespace, JOB_TIMEOUT)

    failed = has_condition(job.obj, "Failed")
    assert failed["reason"] == "PodFailurePolicy", failed
    status = queue_status(kube_client, job)
    assert status["failed"] == 1, status
    assert status["done"] == len(items) - 1, status
    processed = Counter(item for pod in job_pods(kube_client, job) for item in processed_items(pod_logs(pod)))
    assert processed == Counter(item for item in items if item != "poison")
