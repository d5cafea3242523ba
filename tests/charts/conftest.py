"""Fixtures of the chart tests: the pinned helm binaries, with the charts' dependencies built."""

import pytest

from tests.support.helm import CHARTS, Helm, helm_binaries


@pytest.fixture(scope="session", autouse=True)
def _chart_dependencies() -> None:
    """`helm dependency build` for every chart with dependencies (file://, nothing is downloaded)."""
    builder = helm_binaries()[-1]
    for chart_yaml in sorted(CHARTS.glob("*/Chart.yaml")):
        if "dependencies:" in chart_yaml.read_text():
            builder.dependency_build(chart_yaml.parent)


@pytest.fixture(scope="session", params=helm_binaries(), ids=str)
def helm(request: pytest.FixtureRequest) -> Helm:
    """Each pinned helm in turn: Helm 3 and Helm 4."""
    return request.param


@pytest.fixture(scope="session")
def helm4() -> Helm:
    """The newest pinned helm, for checks whose result does not depend on the helm version."""
    return helm_binaries()[-1]
