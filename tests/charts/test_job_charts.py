"""What the three job charts render alike, from the library chart jobworker-common: tested once, for
each chart, with Helm 3 and Helm 4. What is a chart's own is in its own module."""

import pytest

from tests.charts.checks import env_of
from tests.charts.jobcharts import JOB_CHARTS, QUEUE_CHARTS, JobChart, values_of
from tests.support.helm import Helm, chart_defaults
from tests.support.images import image_refs

every_chart = pytest.mark.parametrize("chart", JOB_CHARTS, ids=str)
queue_charts = pytest.mark.parametrize("chart", QUEUE_CHARTS, ids=str)


@every_chart
def test_job_defaults_are_two_pods_at_a_time_with_no_deadline_and_a_generated_selector(
    helm: Helm, chart: JobChart
):
    job = chart.render(helm).get("Job", chart.fullname)
    spec = job["spec"]
    assert spec["parallelism"] == 2
    for absent in ("activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        assert absent not in spec, absent
    assert "selector" not in spec, "Kubernetes generates the Job's selector"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"


@every_chart
def test_job_settings_come_from_values(helm: Helm, chart: JobChart):
    values = {"parallelism": 5, "backoffLimit": 10, "activeDeadlineSeconds": 3600,
              "ttlSecondsAfterFinished": 300, "terminationGracePeriodSeconds": 90}  # fmt: skip
    spec = chart.job_spec(chart.render(helm, values))
    assert spec["parallelism"] == 5
    assert spec["backoffLimit"] == 10
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["ttlSecondsAfterFinished"] == 300
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 90


@queue_charts
def test_a_queue_job_can_start_suspended_and_gives_the_worker_its_grace(helm: Helm, chart: JobChart):
    values = {"suspend": True, "terminationGracePeriodSeconds": 90, "graceSeconds": 60}
    rendered = chart.render(helm, values)
    assert chart.job_spec(rendered)["suspend"] is True
    assert values_of(chart.worker(rendered))["GRACE_SECONDS"] == "60"


@every_chart
def test_worker_runs_the_image_entrypoint_with_the_program_as_args(helm: Helm, chart: JobChart):
    values = {"command": ["python", "/app/run.py"], "args": ["--out", "{item}"]}
    container = chart.worker(chart.render(helm, values))
    assert container["image"] == image_refs()[chart.image]
    assert "command" not in container, f"the image's ENTRYPOINT ({chart.entrypoint}) must stay"
    assert container["args"] == ["--", "python", "/app/run.py", "--out", "{item}"]


@every_chart
def test_pod_runs_as_the_image_user_with_a_writable_tmp(helm: Helm, chart: JobChart):
    rendered = chart.render(helm, chart.extra)
    spec = chart.pod_spec(rendered)
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["enableServiceLinks"] is False
    assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], container["name"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]


@every_chart
def test_pods_have_resource_requests_and_limits_by_default(helm: Helm, chart: JobChart):
    rendered = chart.render(helm, chart.extra)
    spec = chart.pod_spec(rendered)
    test_pod = rendered.get("Pod", chart.test_pod)["spec"]["containers"]
    for container in [*spec.get("initContainers", []), *spec["containers"], *test_pod]:
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}, container["name"]
        assert set(resources["limits"]) == {"cpu", "memory"}, container["name"]


@every_chart
def test_pod_extras_reach_the_worker(helm: Helm, chart: JobChart):
    values = {
        **chart.extra,
        "env": [{"name": "OUTPUT", "value": "/out"}],
        "envFrom": [{"secretRef": {"name": "api-token"}}],
        "extraVolumes": [{"name": "out", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "out", "mountPath": "/out"}],
        "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi", "cpu": None}},
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "spot", "operator": "Exists"}],
        "affinity": {"podAntiAffinity": {}},
        "imagePullSecrets": [{"name": "registry"}],
        "priorityClassName": "batch-low",
    }
    rendered = chart.render(helm, values)
    spec = chart.pod_spec(rendered)
    container = chart.worker(rendered)
    assert env_of(container)["OUTPUT"] == {"name": "OUTPUT", "value": "/out"}
    assert container["envFrom"] == values["envFrom"]
    assert {"name": "out", "mountPath": "/out"} in container["volumeMounts"]
    assert {"name": "out", "emptyDir": {}} in spec["volumes"]
    # Given values are merged into the defaults; null drops a default (here the CPU limit).
    defaults = chart_defaults(chart.name)
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": defaults["resources"]["requests"]["memory"]},
        "limits": {"memory": "1Gi"},
    }
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == values["tolerations"]
    assert spec["affinity"] == values["affinity"]
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["priorityClassName"] == "batch-low"


@every_chart
def test_pod_labels_and_annotations_are_added_without_duplicate_keys(helm: Helm, chart: JobChart):
    values = {"podLabels": {"team": "batch", "app.kubernetes.io/name": "mine"}, "podAnnotations": {"a": "b"}}
    rendered = chart.render(helm, values)
    labels = chart.pod_labels(rendered)
    assert labels["team"] == "batch"
    assert labels["app.kubernetes.io/name"] == chart.name, "the chart's own labels win"
    assert labels["app.kubernetes.io/component"] == "worker"
    assert chart.job_spec(rendered)["template"]["metadata"]["annotations"]["a"] == "b"


@every_chart
def test_other_items_change_the_pod_template(helm: Helm, chart: JobChart):
    """So that `helm upgrade` with other items fails (a Job's template is immutable)."""
    first = chart.job_spec(chart.render(helm, {"items": ["a", "b"]}))["template"]
    second = chart.job_spec(chart.render(helm, {"items": ["a", "c"]}))["template"]
    assert first["metadata"]["annotations"] != second["metadata"]["annotations"]


@every_chart
def test_service_account(helm: Helm, chart: JobChart):
    assert chart.pod_spec(chart.render(helm))["serviceAccountName"] == "default"
    rendered = chart.render(helm, {"serviceAccount": {"create": True, "annotations": {"iam": "role"}}})
    account = rendered.get("ServiceAccount", chart.fullname)
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["annotations"] == {"iam": "role"}
    assert chart.pod_spec(rendered)["serviceAccountName"] == chart.fullname
    named = chart.render(helm, {"serviceAccount": {"name": "existing"}})
    assert chart.pod_spec(named)["serviceAccountName"] == "existing"
    assert named.all("ServiceAccount") == []


@every_chart
def test_network_policy_admits_nothing_to_the_release_pods(helm: Helm, chart: JobChart):
    rendered = chart.render(helm)
    policy = rendered.get("NetworkPolicy", chart.fullname)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in policy["spec"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= chart.pod_labels(rendered).items()
    assert selector.items() <= rendered.get("Pod", chart.test_pod)["metadata"]["labels"].items()
    without = chart.render(helm, {"networkPolicy": {"enabled": False}})
    assert without.find("NetworkPolicy", chart.fullname) is None


@queue_charts
def test_queue_name_defaults_to_the_release_full_name(helm: Helm, chart: JobChart):
    assert values_of(chart.worker(chart.render(helm)))["QUEUE_NAME"] == chart.fullname
    other = helm.template(chart.path, chart.values, release="nightly")
    assert values_of(chart.worker(other))["QUEUE_NAME"] == f"nightly-{chart.name}"
    assert values_of(chart.worker(chart.render(helm, {"queueName": "job2"})))["QUEUE_NAME"] == "job2"


@queue_charts
def test_restart_policy_on_failure_renders_without_pod_failure_policy(helm: Helm, chart: JobChart):
    values = {"restartPolicy": "OnFailure", "podFailurePolicy": {"enabled": False}}
    spec = chart.job_spec(chart.render(helm, values))
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert "podFailurePolicy" not in spec


@queue_charts
def test_no_pod_failure_policy_on_a_cluster_without_it(helm: Helm, chart: JobChart):
    """Kubernetes 1.25 is supported (kubeVersion >=1.25.0-0) but has the field only as alpha."""
    spec = chart.job_spec(chart.render(helm, kube_version="1.25.16"))
    assert "podFailurePolicy" not in spec
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


@queue_charts
def test_notes_warn_when_the_cluster_has_no_pod_failure_policy(helm: Helm, chart: JobChart):
    assert "has no pod failure policy" in helm.notes(chart.path, chart.values, kube_version="1.25.3")
    assert "has no pod failure policy" not in helm.notes(chart.path, chart.values)
