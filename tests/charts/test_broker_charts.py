"""What the two broker charts render alike, from the library chart jobworker-common: tested once, for
each chart, with Helm 3 and Helm 4. What is a chart's own is in its own module."""

from pathlib import Path

import pytest

from tests.charts.brokercharts import BROKER_CHARTS, BrokerChart
from tests.charts.checks import assert_restricted, assert_secrets_only_in_secrets
from tests.support.helm import RELEASE, Helm, chart_defaults, ci_values_files

every_chart = pytest.mark.parametrize("chart", BROKER_CHARTS, ids=str)


@every_chart
def test_every_object_has_the_standard_labels_and_the_services_select_the_pod(helm: Helm, chart: BrokerChart):
    rendered = chart.render(helm)
    statefulset = chart.statefulset(rendered)
    assert statefulset["spec"]["replicas"] == 1
    assert statefulset["spec"]["serviceName"] == f"{chart.fullname}-headless"
    selector = statefulset["spec"]["selector"]["matchLabels"]
    assert selector.items() <= chart.pod_template(rendered)["metadata"]["labels"].items()
    service = rendered.get("Service", chart.fullname)
    assert service["spec"]["selector"] == selector
    assert service["spec"]["type"] == "ClusterIP"
    assert rendered.get("Service", f"{chart.fullname}-headless")["spec"]["clusterIP"] == "None"
    for obj in rendered:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == chart.name
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"{chart.name}-0.1.0"


@every_chart
def test_image_repository_tag_and_digest_are_configurable(helm: Helm, chart: BrokerChart):
    mirror = f"registry.example:5000/mirror/{chart.name}"
    rendered = chart.render(helm, {"image": {"repository": mirror, "tag": "1.2.3"}})
    assert chart.broker(rendered)["image"] == f"{mirror}:1.2.3"
    digest = "sha256:" + "ab" * 32
    rendered = chart.render(helm, {"image": {"digest": digest}})
    assert chart.broker(rendered)["image"] == f"docker.io/library/{chart.name}@{digest}"


@every_chart
def test_every_pod_is_restricted_and_mounts_no_token(helm: Helm, chart: BrokerChart):
    rendered = chart.render(helm)
    assert_restricted(rendered)
    spec = chart.pod_template(rendered)["spec"]
    assert spec["securityContext"]["runAsUser"] == 999, "the official image's user"
    assert spec["securityContext"]["fsGroup"] == 999
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    grace = chart_defaults(chart.name)["terminationGracePeriodSeconds"]
    assert spec["terminationGracePeriodSeconds"] == grace


@every_chart
def test_scheduling_and_resources_reach_the_pod(helm: Helm, chart: BrokerChart):
    zone = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
    values = {
        "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": None, "memory": "2Gi"}},
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [zone]}}
        },
        "priorityClassName": "high",
        "imagePullSecrets": [{"name": "registry"}],
        "podLabels": {"team": "batch"},
        "podAnnotations": {"a": "b"},
    }
    template = chart.pod_template(chart.render(helm, values))
    spec = template["spec"]
    default_memory = chart_defaults(chart.name)["resources"]["requests"]["memory"]
    resources = {"requests": {"cpu": "250m", "memory": default_memory}, "limits": {"memory": "2Gi"}}
    assert spec["containers"][0]["resources"] == resources, "merged into the defaults; null drops one"
    assert spec["nodeSelector"] == {"disk": "ssd"}
    assert spec["tolerations"] == values["tolerations"]
    assert spec["affinity"] == values["affinity"]
    assert spec["priorityClassName"] == "high"
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert template["metadata"]["labels"]["team"] == "batch"
    assert template["metadata"]["annotations"]["a"] == "b"


@every_chart
def test_network_policy_admits_only_labelled_clients_to_the_broker_port(helm: Helm, chart: BrokerChart):
    assert chart.render(helm).all("NetworkPolicy") == []
    extra = [{"namespaceSelector": {"matchLabels": {"team": "batch"}}}]
    rendered = chart.render(helm, {"networkPolicy": {"enabled": True, "extraIngressFrom": extra}})
    policy = rendered.get("NetworkPolicy", chart.fullname)
    selector = chart.statefulset(rendered)["spec"]["selector"]["matchLabels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == selector
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": chart.port, "protocol": "TCP"}]
    assert rule["from"] == [{"podSelector": {"matchLabels": {chart.client_label: chart.fullname}}}, *extra]
    test_pod = chart.test_pod(rendered)
    assert test_pod["metadata"]["labels"][chart.client_label] == chart.fullname
    # The `helm test` pod's own policy: no one may connect to it.
    closed = rendered.get("NetworkPolicy", f"{chart.fullname}-test")
    assert closed["spec"]["podSelector"]["matchLabels"].items() <= test_pod["metadata"]["labels"].items()
    assert closed["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in closed["spec"]


@every_chart
def test_helm_test_pod_is_a_test_hook_that_can_be_left_out(helm: Helm, chart: BrokerChart):
    pod = chart.test_pod(chart.render(helm))
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert chart.render(helm, {"tests": {"enabled": False}}).all("Pod") == []


@every_chart
def test_service_account_is_optional_and_without_token(helm: Helm, chart: BrokerChart):
    assert chart.render(helm).all("ServiceAccount") == []
    rendered = chart.render(helm, {"serviceAccount": {"create": True}})
    assert rendered.get("ServiceAccount", chart.fullname)["automountServiceAccountToken"] is False
    assert chart.pod_template(rendered)["spec"]["serviceAccountName"] == chart.fullname


@pytest.mark.parametrize(
    ("chart", "values_file"),
    [(chart, path) for chart in BROKER_CHARTS for path in ci_values_files(chart.name)],
    ids=lambda param: param.name,  # the chart, then the values file
)
def test_ci_variants_stay_restricted_and_keep_secrets_in_the_secret(
    helm: Helm, chart: BrokerChart, values_file: Path
):
    rendered = chart.render(helm, values_files=[values_file])
    assert_restricted(rendered)
    assert_secrets_only_in_secrets(rendered, public_keys=chart.public_keys)


@every_chart
def test_fullname_follows_overrides(helm: Helm, chart: BrokerChart):
    assert chart.render(helm, {"fullnameOverride": "queue"}).get("StatefulSet")["metadata"]["name"] == "queue"
    rendered = chart.render(helm, release=f"my-{chart.name}")
    assert rendered.get("StatefulSet")["metadata"]["name"] == f"my-{chart.name}"


@every_chart
def test_defaults_lint_strictly(helm: Helm, chart: BrokerChart):
    result = helm.lint(chart.path)
    assert result.returncode == 0, result.stdout + result.stderr
