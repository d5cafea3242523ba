"""Fixtures of the chart tests: the pinned helm binaries, with the charts' dependencies built."""

import graphlib

import pytest
import yaml

from tests.support.helm import CHARTS, Helm, helm_binaries


def local_dependencies(chart: str) -> list[str]:
    """The charts of charts/ that `chart` bundles (file:// dependencies)."""
    meta = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text()) or {}
    return [
        (CHARTS / chart / dependency["repository"].removeprefix("file://")).resolve().name
        for dependency in meta.get("dependencies") or []
        if dependency.get("repository", "").startswith("file://")
    ]


@pytest.fixture(scope="session", autouse=True)
def _chart_dependencies() -> None:
    """`helm dependency build` for every chart with dependencies (file://, nothing is downloaded),
    each after the charts it bundles, so that a bundled broker's archive holds its own library."""
    builder = helm_binaries()[-1]
    charts = sorted(path.parent.name for path in CHARTS.glob("*/Chart.yaml"))
    order = graphlib.TopologicalSorter({chart: local_dependencies(chart) for chart in charts})
    for chart in order.static_order():
        if local_dependencies(chart):
            builder.dependency_build(CHARTS / chart)


@pytest.fixture(scope="session", params=helm_binaries(), ids=str)
def helm(request: pytest.FixtureRequest) -> Helm:
    """Each pinned helm in turn: Helm 3 and Helm 4."""
    return request.param


@pytest.fixture(scope="session")
def helm4() -> Helm:
    """The newest pinned helm, for checks whose result does not depend on the helm version."""
    return helm_binaries()[-1]
