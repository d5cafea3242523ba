"""The two broker charts as their tests see them: how to render each, and where its parts are.

Each chart's own test module (test_redis_chart.py, test_rabbitmq_chart.py) tests what is its own;
what the two render alike, from the library chart jobworker-common (labels, the restricted pod,
scheduling, the network policy, the service account, the `helm test` pod), is tested once for
both in test_broker_charts.py.
"""

from dataclasses import dataclass

from tests.charts.catalog import ChartUnderTest
from tests.support.helm import Helm
from tests.support.manifests import Manifests


@dataclass(frozen=True)
class BrokerChart(ChartUnderTest):  # its name is also the broker container's
    port: str  # the name of the port clients connect to
    # Keys of the chart's Secret that are not secret (rabbitmq keeps the user name beside the
    # password, but it is no secret), for tests.charts.checks.assert_secrets_only_in_secrets.
    public_keys: frozenset[str] = frozenset()

    @property
    def client_label(self) -> str:
        """The label that lets a pod through the chart's NetworkPolicy."""
        return f"jobworker.github.io/{self.name}-client"

    def render(self, helm: Helm, values: dict | None = None, **kwargs: object) -> Manifests:
        return helm.template(self.path, values or {}, **kwargs)

    def statefulset(self, manifests: Manifests) -> dict:
        return manifests.get("StatefulSet", self.fullname)

    def pod_template(self, manifests: Manifests) -> dict:
        return manifests.get("StatefulSet")["spec"]["template"]

    def broker(self, manifests: Manifests) -> dict:
        (container,) = self.pod_template(manifests)["spec"]["containers"]
        assert container["name"] == self.name
        return container

    def test_pod(self, manifests: Manifests) -> dict:
        return manifests.get("Pod", f"{self.fullname}-test-connection")


REDIS = BrokerChart("redis", port="redis")
RABBITMQ = BrokerChart("rabbitmq", port="amqp", public_keys=frozenset({"rabbitmq-username"}))
BROKER_CHARTS = [REDIS, RABBITMQ]
