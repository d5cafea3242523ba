"""Fixtures of the cluster end-to-end tests (pytest-helm-charts plus our `helm` driver).

The tests run against the cluster of --kubeconfig (pytest-helm-charts' option) or KUBECONFIG:
`make test` gives them the local cluster of `make cluster` when there is one. Without a cluster,
or when its API server does not answer, every test here is skipped for one reason, given once in
the summary; with REQUIRE_CLUSTER=1 (CI, `make e2e-test`) that is an error instead, so that CI
cannot pass by skipping. Nothing here stands in for a cluster.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pykube
import pytest
from pytest_helm_charts.clusters import Cluster

from tests.e2e.cluster import cluster_unavailable_reason, kubeconfig_path
from tests.e2e.helm import Helm, helm_binary, image_map

# How long a Job of the docs' examples may take on a CI kind cluster (image pulls included).
JOB_TIMEOUT = 420
BROKER_TIMEOUT = 300


_UNAVAILABLE = pytest.StashKey[str | None]()
_KUBECONFIG = pytest.StashKey[str | None]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or fail, REQUIRE_CLUSTER=1) every e2e test when no cluster answers.

    The check runs once; skipping here, not in a fixture, makes pytest fold the skips into one
    summary line with the reason.
    """
    config = item.config
    if _UNAVAILABLE not in config.stash:
        path = kubeconfig_path(config.getoption("kubeconfig", default=None))
        config.stash[_KUBECONFIG] = path
        config.stash[_UNAVAILABLE] = cluster_unavailable_reason(path)
    reason = config.stash[_UNAVAILABLE]
    if reason is not None:
        if os.environ.get("REQUIRE_CLUSTER") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def e2e_kubeconfig(pytestconfig: pytest.Config) -> str:
    """The kubeconfig of the reachable cluster (pytest_runtest_setup checked it)."""
    path = pytestconfig.stash[_KUBECONFIG]
    assert path is not None
    return path


@pytest.fixture(scope="module")
def kube_config(e2e_kubeconfig: str) -> str:
    """Overrides pytest-helm-charts' fixture: one file, even when KUBECONFIG lists several."""
    return e2e_kubeconfig


@pytest.fixture
def kube_client(kube_cluster: Cluster) -> pykube.HTTPClient:
    return kube_cluster.kube_client


@pytest.fixture
def helm(e2e_kubeconfig: str, random_namespace: pykube.Namespace, tmp_path: Path) -> Iterator[Helm]:
    """Helm (4 unless HELM says otherwise) bound to the test module's random namespace.

    Releases installed through it are uninstalled after the test; pytest-helm-charts deletes the
    namespace after the module.
    """
    driver = Helm(helm_binary(), e2e_kubeconfig, random_namespace.name, tmp_path, image_map())
    yield driver
    driver.uninstall_all()
