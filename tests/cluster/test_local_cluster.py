"""`make cluster`: the pinned Kubernetes, a Ready node, the real controllers, and reuse."""

import re
import time
from pathlib import Path

from tests.cluster.conftest import REPO, kubectl, kubectl_json, make


def pinned_kubernetes() -> str:
    return re.search(r"^\tk8s.io/kubernetes (v\S+)$", (REPO / "cluster" / "go.mod").read_text(), re.M).group(
        1
    )


def test_the_server_is_the_pinned_kubernetes(local_cluster: Path):
    version = kubectl_json(local_cluster, "version")
    assert version["serverVersion"]["gitVersion"] == pinned_kubernetes()
    assert version["clientVersion"]["gitVersion"] == pinned_kubernetes()


def test_the_node_is_ready_on_containerd(local_cluster: Path):
    (node,) = kubectl_json(local_cluster, "get", "nodes")["items"]
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.")
    assert node["status"]["nodeInfo"]["kubeletVersion"] == pinned_kubernetes()


def test_jobs_are_run_by_the_real_job_controller(local_cluster: Path):
    """An Indexed Job of two completions: the kube-controller-manager's Job controller creates its
    pods (the events say so) and marks it Complete with both indexes."""
    namespace = f"job-controller-check-{int(time.time())}"
    kubectl(local_cluster, "create", "namespace", namespace)
    try:
        image = kubectl_json(local_cluster, "get", "nodes")["items"][0]["status"]["images"]
        busybox = next(name for entry in image for name in entry["names"] if "/busybox:" in name)
        job = f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: two, namespace: {namespace}}}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: {busybox}
          imagePullPolicy: Never
          command: [sh, -c, "echo $JOB_COMPLETION_INDEX"]
"""
        kubectl(local_cluster, "apply", "-f", "-", stdin=job)
        kubectl(
            local_cluster, "wait", "-n", namespace, "job/two", "--for=condition=Complete", "--timeout=180s"
        )
        status = kubectl_json(local_cluster, "get", "job", "two", "-n", namespace)["status"]
        assert status["completedIndexes"] == "0,1"
        assert status["succeeded"] == 2
        events = kubectl_json(local_cluster, "get", "events", "-n", namespace)["items"]
        creators = {
            e["source"].get("component") or e.get("reportingComponent")
            for e in events
            if e["reason"] == "SuccessfulCreate"
        }
        assert creators == {"job-controller"}
        leases = kubectl_json(local_cluster, "get", "leases", "-n", "kube-system")["items"]
        assert "kube-controller-manager" in {lease["metadata"]["name"] for lease in leases}
    finally:
        kubectl(local_cluster, "delete", "namespace", namespace, "--wait=false")


def test_make_cluster_reuses_the_healthy_cluster(local_cluster: Path):
    result = make("cluster")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "localcluster: reused the running cluster" in result.stderr
    assert "started etcd" not in result.stderr
