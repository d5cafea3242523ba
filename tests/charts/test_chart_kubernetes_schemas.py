"""Every object every ci values file renders is valid Kubernetes, checked in strict mode.

kubernetes-validate holds the OpenAPI schemas of each Kubernetes release; strict mode also refuses
fields the API does not know, which the API server would otherwise drop without a word. 1.29 is
the oldest release the tests check (podFailurePolicy is beta there), 1.35 the newest; indexed-job
(kubeVersion >=1.27) is checked at 1.27 too, where strict mode proves its newer Job fields absent.
"""

import re
from pathlib import Path

import kubernetes_validate
import pytest

from tests.support.helm import CHARTS, Helm, chart_path, ci_values_files

KUBERNETES_VERSIONS = ["1.29.0", "1.35.0"]


def oldest_kubernetes(chart: str) -> str:
    """The lower bound of the chart's kubeVersion (">=1.25.0-0" gives 1.25.0): the oldest supported."""
    found = re.search(
        r"kubeVersion:\s*[\"']?>=\s*v?(\d+)\.(\d+)", (chart_path(chart) / "Chart.yaml").read_text()
    )
    assert found, f"{chart}: Chart.yaml has no kubeVersion lower bound"
    return f"{found.group(1)}.{found.group(2)}.0"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


CHART_NAMES = sorted(path.parent.name for path in CHARTS.glob("*/Chart.yaml"))
CASES = [
    (chart, values, kube_version)
    for chart in CHART_NAMES
    for values in ci_values_files(chart)
    for kube_version in sorted({oldest_kubernetes(chart), *KUBERNETES_VERSIONS}, key=version_key)
]


@pytest.mark.parametrize(
    ("chart", "values_file", "kube_version"), CASES, ids=[f"{k}-{c}/{v.name}" for c, v, k in CASES]
)
def test_rendered_objects_validate_strictly(helm: Helm, chart: str, values_file: Path, kube_version: str):
    rendered = helm.template(chart_path(chart), values_files=[values_file], kube_version=kube_version)
    assert rendered.pod_specs(), "nothing that runs a pod was rendered"
    for obj in rendered:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where} is not valid Kubernetes {kube_version}: {error.message}")


def test_strict_validation_refuses_an_unknown_field(helm4: Helm):
    """The check above can fail: a field Kubernetes does not know is an error in strict mode."""
    rendered = helm4.template(chart_path("redis"), {})
    statefulset = rendered.get("StatefulSet")
    statefulset["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, "1.35.0", strict=True)


E2E_VALUES = sorted(
    (chart, path)
    for path in (Path(__file__).parents[1] / "e2e" / "values").glob("*.yaml")
    for chart in CHART_NAMES
    if path.stem == chart or path.stem.startswith(f"{chart}-")
)


@pytest.mark.parametrize(("chart", "values_file"), E2E_VALUES, ids=[path.name for _, path in E2E_VALUES])
def test_e2e_scenarios_render_valid_objects(helm4: Helm, chart: str, values_file: Path):
    """The cluster suite's values for these charts are accepted and render valid Kubernetes."""
    rendered = helm4.template(chart_path(chart), values_files=[values_file])
    for obj in rendered:
        kubernetes_validate.validate(obj, "1.29.0", strict=True)
