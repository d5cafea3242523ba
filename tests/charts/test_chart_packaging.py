"""What every chart of the repository must be: linted, described, documented, strict about values.

Checks that hold for all charts alike; each chart's rendered objects are tested in its own module.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import jobworker
from tests.charts.catalog import ALL_CHARTS, APPLICATION_CHARTS
from tests.support.helm import CHARTS, REPO, Helm, chart_path, ci_values_files
from tests.support.images import image_refs

# The charts that run a Job of a worker image, with the image `make images` builds for each.
WORKER_CHARTS = {
    "fine-queue-job": "fine-queue-worker",
    "coarse-queue-job": "coarse-queue-worker",
    "indexed-job": "indexed-worker",
}
CI_CASES = [(chart, values) for chart in APPLICATION_CHARTS for values in ci_values_files(chart)]
README_GENERATOR = REPO / "node_modules" / ".bin" / "readme-generator"
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
# Objects of a schema deliberately left open: the bundled chart's values, checked by its own schema.
OPEN_OBJECTS = {"fine-queue-job": {"/properties/redis"}, "coarse-queue-job": {"/properties/rabbitmq"}}


def chart_yaml(chart: str) -> dict:
    return yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())


def schema(chart: str) -> dict:
    return json.loads((CHARTS / chart / "values.schema.json").read_text())


@pytest.mark.parametrize(("chart", "values_file"), CI_CASES, ids=[f"{c}/{v.name}" for c, v in CI_CASES])
def test_helm_lint_strict_passes_for_every_ci_values_file(helm: Helm, chart: str, values_file: Path):
    result = helm.lint(chart_path(chart), [values_file])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_each_ci_values_file_says_which_features_it_checks(chart: str):
    """`ct install` installs the chart once per file, so features that can be checked together
    share a file; its opening comment names each of them."""
    files = ci_values_files(chart)
    assert len(files) >= 3
    for values_file in files:
        first = values_file.read_text().splitlines()[0]
        assert first.startswith("# "), (
            f"{values_file.name} must say in its first lines which features it covers"
        )


@pytest.mark.parametrize("chart", sorted(WORKER_CHARTS))
def test_ci_jobs_finish_quickly_for_ct_install(chart: str):
    """ct install waits for the Jobs (--wait-for-jobs): each must end soon, even when failing."""
    for values_file in ci_values_files(chart):
        values = yaml.safe_load(values_file.read_text())
        assert 0 <= values["backoffLimit"] <= 2, values_file.name
        # below ct.yaml's --timeout 600s, so that a stuck Job fails before ct gives up on it
        assert 0 < values["activeDeadlineSeconds"] < 600, values_file.name


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_chart_yaml_describes_the_chart(chart: str):
    meta = chart_yaml(chart)
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == chart
    assert SEMVER.match(meta["version"])
    if chart in APPLICATION_CHARTS:  # a library chart holds no application
        assert isinstance(meta["appVersion"], str)
        assert meta["appVersion"]
    assert re.fullmatch(r">=1\.\d+\.0-0", meta["kubeVersion"]), "a lower bound that admits pre-releases"
    assert len(meta["description"]) > 30
    assert meta["home"] == "https://jobworker.github.io/jobworker"
    assert "https://github.com/jobworker/jobworker" in meta["sources"]
    assert meta["keywords"]
    assert [m["name"] for m in meta["maintainers"]] == ["jobworker maintainers"]


@pytest.mark.parametrize(("chart", "image_name"), sorted(WORKER_CHARTS.items()))
def test_worker_chart_runs_the_image_make_images_builds(helm4: Helm, chart: str, image_name: str):
    """appVersion is the jobworker version, and the default image is the one `make images` tags."""
    assert chart_yaml(chart)["appVersion"] == jobworker.__version__
    rendered = helm4.template(chart_path(chart), {"command": ["true"], "items": ["a"]})
    image = rendered.get("Job")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == image_refs()[image_name]


@pytest.mark.parametrize(("chart", "broker"), [("fine-queue-job", "redis"), ("coarse-queue-job", "rabbitmq")])
def test_job_chart_depends_on_the_local_broker_chart(chart: str, broker: str):
    dependency = chart_yaml(chart)["dependencies"][0]
    assert dependency == {
        "name": broker,
        "version": chart_yaml(broker)["version"],
        "repository": f"file://../{broker}",
        "condition": f"{broker}.enabled",
    }
    lock = yaml.safe_load((CHARTS / chart / "Chart.lock").read_text())
    locked = [(d["name"], d["version"], d["repository"]) for d in lock["dependencies"]]
    assert locked[0] == (broker, dependency["version"], f"file://../{broker}")
    packaged = CHARTS / chart / "charts" / f"{broker}-{dependency['version']}.tgz"
    assert packaged.exists(), "helm dependency build (the session fixture) packages it"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(packaged)], cwd=REPO, check=False)
    assert ignored.returncode == 0, "packaged dependencies must stay out of git (.gitignore charts/*/charts/)"


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_values_yaml_names_its_schema_and_documents_every_value(chart: str):
    text = (CHARTS / chart / "values.yaml").read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=values.schema.json"
    assert text.count("## @param ") >= 20


def _object_schemas(node: object, path: str = ""):
    """(path, schema) of every object schema inside a JSON schema."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _object_schemas(value, f"{path}/{index}")


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_schema_is_closed_at_every_level_the_chart_owns(chart: str):
    """An object with named properties rejects any other key, so a misspelled key is an error."""
    loose = []
    for path, node in _object_schemas(schema(chart)):
        if "properties" in node and node.get("additionalProperties") is not False:
            loose.append(path)
    assert sorted(loose) == sorted(OPEN_OBJECTS.get(chart, set()))


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_every_top_level_value_has_a_schema_with_a_description(chart: str):
    document = schema(chart)
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    assert set(values) <= set(document["properties"])
    for name, node in document["properties"].items():
        described = node.get("description") or document["definitions"][node["$ref"].rsplit("/", 1)[1]].get(
            "description"
        )
        assert described, f"{chart}: {name} has no description"


def test_ct_yaml_lints_and_installs_the_charts():
    config = yaml.safe_load((REPO / "ct.yaml").read_text())
    assert config["chart-dirs"] == ["charts"]
    assert config["target-branch"] == "main"
    assert config["check-version-increment"] is True
    assert config["validate-maintainers"] is False
    assert "--wait-for-jobs" in config["helm-extra-set-args"].split()
    extra = config["helm-extra-args"].split()
    assert extra[extra.index("--timeout") + 1] == "600s"


def ct_helm_commands(config: dict, release: str, chart: str, values: str, namespace: str) -> list[list[str]]:
    """The helm commands `ct install` runs for one chart and values file, argument for argument.

    As chart-testing v3.14.0's pkg/tool/helm.go builds them: helm-extra-args go to every command,
    helm-extra-set-args to install and upgrade only (both split on white space, as ct does).
    """
    extra = config.get("helm-extra-args", "").split()
    extra_set = config.get("helm-extra-set-args", "").split()
    target = ["--namespace", namespace]
    return [
        ["install", release, chart, *target, "--wait", "--values", values, *extra, *extra_set],
        ["upgrade", release, chart, *target, "--wait", "--values", values, *extra, *extra_set],
        ["test", release, *target, *extra],
        ["uninstall", release, *target, "--wait", *extra],
    ]


@pytest.mark.parametrize("command", ["install", "upgrade", "test", "uninstall"])
def test_every_helm_command_of_ct_install_takes_ct_yaml_s_arguments(helm: Helm, command: str):
    """Each command gets past its flags to the cluster: no flag of ct.yaml is refused by it.

    Without a cluster (KUBECONFIG points nowhere) helm stops at its first call to the API server,
    which it makes only after parsing every flag; an unknown flag stops it before.
    """
    config = yaml.safe_load((REPO / "ct.yaml").read_text())
    values = ci_values_files("redis")[0]
    commands = ct_helm_commands(config, "ct-release", str(chart_path("redis")), str(values), "ct-namespace")
    args = next(args for args in commands if args[0] == command)

    result = helm.run(*args, check=False)

    assert result.returncode != 0
    assert "unknown flag" not in result.stderr, (
        f"helm {command} refuses an argument of ct.yaml: {result.stderr}"
    )
    assert "cluster unreachable" in result.stderr.lower(), result.stderr


# --- README tables ---------------------------------------------------------------------------------
def _generate_readme(values: Path, readme: Path) -> None:
    if not README_GENERATOR.exists():
        pytest.fail(f"{README_GENERATOR.relative_to(REPO)} is missing: run `make node-deps`")
    result = subprocess.run(
        [str(README_GENERATOR), "--values", str(values), "--readme", str(readme)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("chart", APPLICATION_CHARTS)
def test_readme_values_table_is_generated_from_values_yaml(chart: str, tmp_path: Path):
    """Regenerating into a copy of README.md must change nothing: `make docs` was run."""
    committed = CHARTS / chart / "README.md"
    copy = tmp_path / "README.md"
    shutil.copy(committed, copy)
    _generate_readme(CHARTS / chart / "values.yaml", copy)
    assert copy.read_text() == committed.read_text(), f"{committed} is out of date: run `make docs`"
    assert "| `" in committed.read_text().split("## Parameters", 1)[1]


def test_readme_check_notices_a_changed_value(tmp_path: Path):
    """The drift check can fail: a default changed in values.yaml shows in the regenerated table."""
    values = tmp_path / "values.yaml"
    values.write_text((CHARTS / "redis" / "values.yaml").read_text().replace("size: 1Gi", "size: 7Gi"))
    copy = tmp_path / "README.md"
    shutil.copy(CHARTS / "redis" / "README.md", copy)
    _generate_readme(values, copy)
    assert "`7Gi`" in copy.read_text()
    assert copy.read_text() != (CHARTS / "redis" / "README.md").read_text()


def test_readme_generator_version_is_pinned():
    package = json.loads((REPO / "package.json").read_text())
    lock = json.loads((REPO / "package-lock.json").read_text())
    pinned = package["devDependencies"]["@bitnami/readme-generator-for-helm"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), "an exact version, not a range"
    assert lock["packages"]["node_modules/@bitnami/readme-generator-for-helm"]["version"] == pinned
