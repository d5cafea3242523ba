"""charts/jobworker-common: the one place of what the charts share, and how they are kept to it.

The application charts bundle the library chart as they bundle their broker (file://, in
Chart.lock); its helpers are named after it; it renders nothing, so ct install leaves it out; and
every chart's values.schema.json holds the shared entries exactly as scripts/chart-schemas.py
writes them from charts/jobworker-common/schema/shared.json (`make schemas`).
"""

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.charts.catalog import APPLICATION_CHARTS, LIBRARY_CHARTS
from tests.support.helm import CHARTS, REPO, Helm

LIBRARY = "jobworker-common"
SCHEMAS_SCRIPT = REPO / "scripts" / "chart-schemas.py"
DEFINE = re.compile(r'\{\{-?\s*define\s+"([^"]+)"')
INCLUDE = re.compile(r'include\s+"([^"]+)"')


def chart_yaml(chart: str) -> dict:
    return yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())


def templates(chart: str) -> dict[Path, str]:
    files = sorted(path for path in (CHARTS / chart / "templates").rglob("*") if path.is_file())
    return {path: path.read_text() for path in files}


def test_the_library_is_the_only_library_chart():
    assert LIBRARY_CHARTS == [LIBRARY]
    assert chart_yaml(LIBRARY)["type"] == "library"
    assert chart_yaml(LIBRARY)["version"] == "0.1.0"


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_every_chart_bundles_the_library_as_it_bundles_its_broker(chart: str):
    """A file:// dependency, locked in Chart.lock, packaged by `helm dependency build`."""
    version = chart_yaml(LIBRARY)["version"]
    dependency = {"name": LIBRARY, "version": version, "repository": f"file://../{LIBRARY}"}
    assert dependency in chart_yaml(chart)["dependencies"]
    lock = yaml.safe_load((CHARTS / chart / "Chart.lock").read_text())
    assert dependency in [{k: d[k] for k in ("name", "version", "repository")} for d in lock["dependencies"]]
    assert (CHARTS / chart / "charts" / f"{LIBRARY}-{version}.tgz").exists()


def test_the_library_renders_nothing_and_lints_clean(helm: Helm):
    """Helm refuses to install (or template) a library chart; ct lints it with helm lint."""
    refused = helm.run("template", "demo", CHARTS / LIBRARY, check=False)
    assert refused.returncode != 0
    assert "library charts are not installable" in refused.stderr
    linted = helm.lint(CHARTS / LIBRARY)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "[WARNING]" not in linted.stdout
    assert "values.yaml: file does not exist" not in linted.stdout, "ct lint's yamllint reads values.yaml"


def test_helpers_are_named_after_their_chart():
    """Named templates are global across a chart and its dependencies: each chart's own carry its
    name, the library's `jobworker-common.` (as bitnami's common chart names its `common.`)."""
    for chart in [LIBRARY, *APPLICATION_CHARTS]:
        for path, text in templates(chart).items():
            for name in DEFINE.findall(text):
                assert name.startswith(f"{chart}."), f"{path.relative_to(REPO)} defines {name}"


def test_every_library_helper_is_used():
    """No dead helper: each one is included by a chart, or by another helper that is."""
    texts = [text for chart in [LIBRARY, *APPLICATION_CHARTS] for text in templates(chart).values()]
    included = {name for text in texts for name in INCLUDE.findall(text)}
    defined = {name for text in templates(LIBRARY).values() for name in DEFINE.findall(text)}
    assert sorted(defined - included) == []


def make_var(name: str) -> str:
    result = subprocess.run(
        ["make", "-s", f"--eval=print-var: ; @echo $({name})", "print-var"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_ct_install_leaves_out_the_library_charts():
    """ct lint lints every chart; ct install would fail on a library chart, so every ct install
    (the Makefile's and CI's) excludes each of them."""
    assert make_var("LIBRARY_CHARTS").split() == LIBRARY_CHARTS
    exclusions = [f"--excluded-charts {chart}" for chart in LIBRARY_CHARTS]
    arguments = make_var("CT_INSTALL_ARGS")
    assert all(exclusion in arguments for exclusion in exclusions)
    makefile = (REPO / "Makefile").read_text()
    installs = re.findall(r"\$\(CT\) install\b.*", makefile)
    assert installs, "the Makefile runs ct install"
    assert all("$(CT_INSTALL_ARGS)" in line for line in installs), installs
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    runs = [
        step["run"]
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if re.search(r"\bct install\b", step.get("run", ""))
    ]
    assert runs, "CI runs ct install"
    assert all(exclusion in run for run in runs for exclusion in exclusions), runs


def test_make_package_puts_the_library_in_every_archive(tmp_path: Path):
    """The brokers are packaged before the charts that bundle them, so the broker inside a job
    chart's archive holds the library too."""
    result = subprocess.run(
        ["make", "--no-print-directory", "package", f"DIST={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with tarfile.open(tmp_path / "fine-queue-job-0.1.0.tgz") as archive:
        names = archive.getnames()
    assert f"fine-queue-job/charts/{LIBRARY}/Chart.yaml" in names
    assert f"fine-queue-job/charts/redis/charts/{LIBRARY}/Chart.yaml" in names
    with tarfile.open(tmp_path / f"{LIBRARY}-0.1.0.tgz") as archive:
        assert not [name for name in archive.getnames() if "/schema/" in name], "make schemas' source"


def chart_schemas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCHEMAS_SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_every_schema_is_as_make_schemas_writes_it():
    result = chart_schemas("--check")
    assert result.returncode == 0, result.stderr


def test_the_drift_check_notices_a_schema_edited_by_hand(tmp_path: Path):
    """A shared entry edited in one chart's schema fails the check, which names the chart and the
    entry; `make schemas` writes it back from the source."""
    charts = tmp_path / "charts"
    for schema in CHARTS.glob("*/values.schema.json"):
        (charts / schema.parent.name).mkdir(parents=True)
        shutil.copy(schema, charts / schema.parent.name)
    shutil.copytree(CHARTS / LIBRARY / "schema", charts / LIBRARY / "schema")
    edited = charts / "fine-queue-job" / "values.schema.json"
    original = edited.read_text()
    document = json.loads(original)
    document["properties"]["nameOverride"]["maxLength"] = 64
    document["definitions"]["quantity"]["anyOf"][1]["minimum"] = -1
    edited.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

    result = chart_schemas("--check", "--charts", str(charts))

    assert result.returncode == 1
    assert f"{edited}: properties.nameOverride, definitions.quantity" in result.stderr
    assert "run `make schemas`" in result.stderr
    assert chart_schemas("--charts", str(charts)).returncode == 0
    assert edited.read_text() == original
    assert chart_schemas("--check", "--charts", str(charts)).returncode == 0


def references(node: object) -> set[str]:
    return set(re.findall(r'"\$ref": "#/definitions/([^"]+)"', json.dumps(node)))


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_a_schema_holds_the_shared_definitions_it_refers_to_and_no_other(chart: str):
    shared = json.loads((CHARTS / LIBRARY / "schema" / "shared.json").read_text())
    document = json.loads((CHARTS / chart / "values.schema.json").read_text())
    definitions = document.pop("definitions")
    needed, pending = set(), references(document)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending |= references(definitions[name])
    assert set(definitions) == needed
    assert all(definitions[name] == shared["definitions"][name] for name in definitions)
