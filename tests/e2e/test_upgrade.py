"""`helm upgrade` of the broker charts keeps the passwords they generated at install.

A chart that generated a new password on every upgrade would lock its clients out: the broker keeps
the old one in its data (RabbitMQ) or would restart with a new one while workers hold the old.
"""

import base64

import pykube
import pytest
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from tests.e2e.cluster import release_stateful_sets
from tests.e2e.conftest import BROKER_TIMEOUT


def secret_data(kube_client, namespace: str, release: str) -> dict[str, str]:
    secrets = pykube.Secret.objects(kube_client, namespace=namespace).filter(
        selector={"app.kubernetes.io/instance": release}
    )
    data = {}
    for secret in secrets:
        for key, value in (secret.obj.get("data") or {}).items():
            data[f"{secret.name}/{key}"] = base64.b64decode(value).decode()
    return data


@pytest.mark.parametrize("chart", ["redis", "rabbitmq"])
def test_upgrade_keeps_the_generated_passwords_and_clients_still_log_in(helm, kube_client, chart: str):
    release = f"{chart}-upgraded"
    helm.install(release, chart, {"tests": {"enabled": True}})
    before = secret_data(kube_client, helm.namespace, release)
    assert any("password" in key for key in before), sorted(before)

    helm.upgrade(release, chart, {"tests": {"enabled": True}})

    assert secret_data(kube_client, helm.namespace, release) == before
    brokers = release_stateful_sets(kube_client, helm.namespace, release)
    wait_for_stateful_sets_to_run(kube_client, brokers, helm.namespace, BROKER_TIMEOUT)
    tested = helm.test(release)  # logs in with the Secret's password
    assert tested.returncode == 0, tested.stdout + tested.stderr
