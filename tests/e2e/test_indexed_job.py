"""The Indexed Job on a cluster: charts/indexed-job, each pod's completion index picks its item."""

from tests.e2e.cluster import (
    completion_index,
    has_condition,
    install_job,
    job_pods,
    pod_logs,
    processed_items,
    wait_for_job_to_complete,
    wait_for_job_to_fail,
)
from tests.e2e.conftest import BROKER_TIMEOUT, JOB_TIMEOUT
from tests.e2e.helm import load_values

CHART = "indexed-job"


def test_each_index_gets_its_item_as_in_the_docs(helm, kube_client):
    values = load_values(CHART)
    job = install_job(helm, kube_client, CHART, "indexed", values, timeout=BROKER_TIMEOUT)

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)

    assert job.obj["spec"]["completionMode"] == "Indexed"
    assert job.obj["spec"]["completions"] == len(values["items"])
    pods = job_pods(kube_client, job)
    assert len(pods) == len(values["items"]), [pod.name for pod in pods]
    output = {completion_index(pod): processed_items(pod_logs(pod)) for pod in pods}
    assert output == {0: ["oof"], 1: ["rab"], 2: ["zab"], 3: ["xuq"], 4: ["zyx"]}
    assert job.obj["status"].get("completedIndexes") == "0-4"
    tested = helm.test("indexed")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_init_container_writes_each_index_its_item_for_an_unmodified_program(helm, kube_client):
    values = load_values(f"{CHART}-init-container")
    job = install_job(helm, kube_client, CHART, "indexed-init", values, timeout=BROKER_TIMEOUT)

    job = wait_for_job_to_complete(kube_client, job.name, helm.namespace, JOB_TIMEOUT)

    pods = job_pods(kube_client, job)
    assert len(pods) == len(values["items"]), [pod.name for pod in pods]
    output = {completion_index(pod): pod_logs(pod, "worker").strip() for pod in pods}
    assert output == {0: "oof", 1: "rab", 2: "zab", 3: "xuq", 4: "zyx"}
    for pod in pods:
        assert f"index {completion_index(pod)} (from JOB_COMPLETION_INDEX)" in pod_logs(pod, "input")
    tested = helm.test("indexed-init")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_failing_items_fail_only_their_indexes_as_the_job_controller_counts_them(helm, kube_client):
    values = load_values(f"{CHART}-failing")
    bad, flaky = values["items"].index("bad"), values["items"].index("flaky")
    job = install_job(helm, kube_client, CHART, "indexed-bad", values, timeout=BROKER_TIMEOUT)

    job = wait_for_job_to_fail(kube_client, job.name, helm.namespace, JOB_TIMEOUT)

    failed = has_condition(job.obj, "Failed")
    assert failed["reason"] == "FailedIndexes", failed
    status = job.obj["status"]
    assert status.get("failedIndexes") == f"{bad},{flaky}", status
    others = [index for index in range(len(values["items"])) if index not in (bad, flaky)]
    assert status.get("completedIndexes") == ",".join(map(str, others)), status
    assert status.get("failed") == 3, status  # one run of `bad`, two of `flaky`
    indexes = [completion_index(pod) for pod in job_pods(kube_client, job)]
    assert indexes.count(bad) == 1, f"FailIndex: the bad item runs once, no retry ({indexes})"
    assert indexes.count(flaky) == 2, f"backoffLimitPerIndex 1: one retry of the index ({indexes})"
    done = {completion_index(pod): processed_items(pod_logs(pod)) for pod in job_pods(kube_client, job)}
    assert {index: done[index] for index in others} == {0: ["oof"], 1: ["rab"], 3: ["xuq"]}
