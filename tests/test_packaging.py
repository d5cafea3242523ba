"""`make package` and `make index`: versioned chart archives with their dependencies, and an index.

They run on throwaway charts in a temporary directory (one depending on the other through
file://, as fine-queue-job depends on redis), and on the repository's own charts once there are any.
"""

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
HELM4 = os.environ.get("HELM4") or str(REPO_ROOT / ".tools" / "helm-4.1.4" / "helm")
CHARTS = sorted(path.parent for path in (REPO_ROOT / "charts").glob("*/Chart.yaml"))


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def chart(root: Path, name: str, version: str, dependencies: list[dict] | None = None) -> Path:
    directory = root / name
    (directory / "templates").mkdir(parents=True)
    metadata = {"apiVersion": "v2", "name": name, "version": version, "appVersion": "0.1.0"}
    if dependencies:
        metadata["dependencies"] = dependencies
    (directory / "Chart.yaml").write_text(yaml.safe_dump(metadata))
    (directory / "values.yaml").write_text("{}\n")
    (directory / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-" + name + "\n"
    )
    return directory


@pytest.fixture
def charts(tmp_path: Path) -> Path:
    root = tmp_path / "charts"
    chart(root, "broker", "0.3.0")
    chart(root, "job", "1.2.0", [{"name": "broker", "version": "0.3.0", "repository": "file://../broker"}])
    return root


def test_make_package_puts_versioned_archives_with_their_dependencies_in_dist(charts: Path, tmp_path: Path):
    dist = tmp_path / "dist"

    result = make("package", f"CHARTS_DIR={charts}", f"DIST={dist}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(path.name for path in dist.iterdir()) == ["broker-0.3.0.tgz", "job-1.2.0.tgz"]
    with tarfile.open(dist / "job-1.2.0.tgz") as archive:
        names = archive.getnames()
    assert "job/Chart.yaml" in names
    assert any(name.startswith("job/charts/broker") for name in names), names
    rendered = subprocess.run(
        [HELM4, "template", "r", str(dist / "job-1.2.0.tgz")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {doc["metadata"]["name"] for doc in yaml.safe_load_all(rendered) if doc}
    assert names == {"r-job", "r-broker"}  # the archive alone renders the dependency too


def test_make_index_writes_a_chart_repository_index(charts: Path, tmp_path: Path):
    dist = tmp_path / "dist"
    url = "https://charts.example.test/jobworker"

    result = make("index", f"CHARTS_DIR={charts}", f"DIST={dist}", f"CHART_REPO_URL={url}")

    assert result.returncode == 0, result.stdout + result.stderr
    index = yaml.safe_load((dist / "index.yaml").read_text())
    entries = {
        name: [(entry["version"], entry["urls"]) for entry in versions]
        for name, versions in index["entries"].items()
    }
    assert entries == {
        "broker": [("0.3.0", [f"{url}/broker-0.3.0.tgz"])],
        "job": [("1.2.0", [f"{url}/job-1.2.0.tgz"])],
    }
    assert index["entries"]["job"][0]["dependencies"][0]["name"] == "broker"


def test_make_package_says_when_there_is_no_chart(tmp_path: Path):
    result = make("package", f"CHARTS_DIR={tmp_path}", f"DIST={tmp_path / 'dist'}")
    assert result.returncode != 0
    assert f"make package: no chart (*/Chart.yaml) in {tmp_path}/" in result.stderr


@pytest.mark.skipif(not CHARTS, reason="no chart in charts/ yet")
def test_make_package_packages_every_chart_of_the_repository(tmp_path: Path):
    dist = tmp_path / "dist"
    result = make("package", f"DIST={dist}")
    assert result.returncode == 0, result.stdout + result.stderr
    expected = set()
    for directory in CHARTS:
        metadata = yaml.safe_load((directory / "Chart.yaml").read_text())
        expected.add(f"{metadata['name']}-{metadata['version']}.tgz")
    assert {path.name for path in dist.iterdir()} == expected


# --- the release workflow's tag check ---------------------------------------------------------------
def _app_version(chart_dir: Path) -> str:
    return str(yaml.safe_load((chart_dir / "Chart.yaml").read_text())["appVersion"])


def test_release_tag_check_passes_on_the_repository_s_own_charts():
    """The tag of the worker version passes against the real charts, the broker charts included."""
    import jobworker  # noqa: PLC0415 - the worker package, installed in the test environment

    result = make("check-release-tag", f"RELEASE_TAG=v{jobworker.__version__}")

    assert result.returncode == 0, result.stdout + result.stderr
    # The broker charts carry their servers' versions, so checking every chart could never pass.
    assert {_app_version(REPO_ROOT / "charts" / name) for name in ("redis", "rabbitmq")} & {
        jobworker.__version__
    } == set()


def test_release_tag_check_covers_exactly_the_charts_of_worker_images():
    result = make("-s", "--eval=print-worker-charts: ; @echo $(WORKER_CHARTS)", "print-worker-charts")
    worker_charts = set(result.stdout.split())
    images = {line.split("/")[-1].split(":")[0] for line in make("-s", "image-refs").stdout.split()}
    with_worker_image = {
        path.name
        for path in CHARTS
        if set(re.findall(r"ghcr\.io/jobworker/([a-z-]+)", (path / "values.yaml").read_text())) & images
    }
    assert worker_charts == with_worker_image == {"fine-queue-job", "coarse-queue-job", "indexed-job"}


def test_release_tag_check_names_each_mismatch(tmp_path: Path):
    result = make("check-release-tag", "RELEASE_TAG=v9.9.9")

    assert result.returncode != 0
    for name in ("fine-queue-job", "coarse-queue-job", "indexed-job"):
        assert f"charts/{name}/Chart.yaml: appVersion 0.1.0 does not match the tag v9.9.9" in result.stderr
    assert "the worker version" in result.stderr
    assert "redis" not in result.stderr
    assert "rabbitmq" not in result.stderr

    # One worker chart left behind at an old appVersion fails the check, naming it alone.
    copy = tmp_path / "charts"
    for chart_dir in CHARTS:
        (copy / chart_dir.name).mkdir(parents=True)
        (copy / chart_dir.name / "Chart.yaml").write_text((chart_dir / "Chart.yaml").read_text())
    stale = copy / "indexed-job" / "Chart.yaml"
    stale.write_text(re.sub(r"(?m)^appVersion: .*$", 'appVersion: "0.0.9"', stale.read_text()))
    current = "v" + _app_version(REPO_ROOT / "charts" / "fine-queue-job")
    result = make("check-release-tag", f"RELEASE_TAG={current}", f"CHARTS_DIR={copy}")
    assert result.returncode != 0
    assert result.stderr.count("does not match") == 1
    assert "indexed-job/Chart.yaml: appVersion 0.0.9 does not match" in result.stderr
