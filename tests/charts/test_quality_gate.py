"""The quality gate over every application chart in charts/: checks that hold for any such chart,
found by listing (a library chart renders nothing and has no values: test_library_chart.py).

- Helm 3 and Helm 4 render every ci values file to the same objects, at the oldest Kubernetes
  version the chart supports (its Chart.yaml kubeVersion) and the newest one tested.
- values.schema.json and values.yaml describe the same keys, at every level where the schema
  lists properties: a value without a schema, or a schema entry for a value that does not exist,
  is drift. Three kinds of key are exempt: `global` and `enabled` at the top, which Helm and a
  parent chart's dependency condition set, and the sections of subcharts, which their own schemas
  check.
"""

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from tests.charts.catalog import APPLICATION_CHARTS
from tests.support.helm import chart_path, ci_values_files, helm_binaries

NEWEST_KUBERNETES = "1.35.0"


def oldest_kubernetes(chart: str) -> str:
    """The lower bound of the chart's kubeVersion (">=1.25.0-0" gives 1.25.0)."""
    meta = yaml.safe_load((chart_path(chart) / "Chart.yaml").read_text())
    found = re.search(r">=\s*v?(\d+)\.(\d+)", meta.get("kubeVersion", ""))
    assert found, f"{chart}: Chart.yaml has no kubeVersion lower bound"
    return f"{found.group(1)}.{found.group(2)}.0"


def normalised(objects: list[dict]) -> list[dict]:
    """The objects with what a render draws at random (generated passwords, cookies) blanked."""
    result = [
        {**obj, "data": dict.fromkeys(obj.get("data") or {}, "<random>")}
        if obj.get("kind") == "Secret"
        else obj
        for obj in objects
    ]
    return sorted(result, key=lambda o: (o["kind"], o["metadata"]["name"]))


CASES = [
    (chart, values, version)
    for chart in APPLICATION_CHARTS
    for values in ci_values_files(chart) or [None]
    for version in (oldest_kubernetes(chart), NEWEST_KUBERNETES)
]


@pytest.mark.parametrize(
    ("chart", "values_file", "kube_version"),
    CASES,
    ids=[f"{c}/{v.name if v else 'defaults'}@{k}" for c, v, k in CASES],
)
def test_helm_3_and_helm_4_render_the_same_objects(chart: str, values_file: Path | None, kube_version: str):
    helm3, helm4 = helm_binaries()
    values_files = [values_file] if values_file else []
    rendered = [
        normalised(
            list(helm.template(chart_path(chart), values_files=values_files, kube_version=kube_version))
        )
        for helm in (helm3, helm4)
    ]
    assert rendered[0] == rendered[1]


def test_the_comparison_notices_a_difference(tmp_path: Path):
    """The check above can fail: a chart that renders differently per Helm major is caught."""
    chart = tmp_path / "differs"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: differs\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
        "data:\n  helm: {{ .Capabilities.HelmVersion.Version | quote }}\n"
    )
    helm3, helm4 = helm_binaries()
    assert normalised(list(helm3.template(chart))) != normalised(list(helm4.template(chart)))


SET_BY_OTHERS = frozenset({"global", "enabled"})  # top-level keys Helm or a parent chart sets


def schema_drift(
    values: object, schema: Mapping, path: str = "", skip: frozenset = frozenset()
) -> Iterator[str]:
    """Where values.yaml and the schema disagree on which keys exist (keys in `skip` aside)."""
    properties = schema.get("properties")
    if not isinstance(values, Mapping) or properties is None:
        return
    for key in values.keys() - properties.keys() - skip:
        yield f"{path}{key}: in values.yaml, not in values.schema.json"
    for key in properties.keys() - values.keys() - skip - (SET_BY_OTHERS if not path else set()):
        yield f"{path}{key}: in values.schema.json, not in values.yaml"
    for key in (values.keys() & properties.keys()) - skip:
        yield from schema_drift(values[key], properties[key], f"{path}{key}.")


def subchart_keys(chart: str) -> frozenset:
    meta = yaml.safe_load((chart_path(chart) / "Chart.yaml").read_text())
    return frozenset(dep.get("alias") or dep["name"] for dep in meta.get("dependencies") or [])


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_the_schema_and_values_yaml_have_the_same_keys(chart: str):
    values = yaml.safe_load((chart_path(chart) / "values.yaml").read_text())
    schema = yaml.safe_load((chart_path(chart) / "values.schema.json").read_text())
    assert sorted(schema_drift(values, schema, skip=subchart_keys(chart))) == []


def test_the_drift_check_notices_a_value_without_schema():
    schema = {"properties": {"image": {"properties": {"tag": {"type": "string"}}}}}
    assert list(schema_drift({"image": {"tag": "", "digest": ""}}, schema)) == [
        "image.digest: in values.yaml, not in values.schema.json"
    ]
    assert list(schema_drift({"image": {}}, schema)) == [
        "image.tag: in values.schema.json, not in values.yaml"
    ]


def test_every_helm_binary_is_pinned():
    assert [helm.major for helm in helm_binaries()] == [3, 4]
