"""indexed-job's pods, run from the rendered manifests as local processes: the Kubernetes docs' example.

Items foo bar baz qux xyz with the docs' unmodified `rev` give oof rab zab xuq zyx for indexes 0 to
4. Each pod is the rendered Job's pod as the kubelet would run it for one completion index: with
JOB_COMPLETION_INDEX as the Job controller adds it, the downward API file of the index annotation,
and the items of the rendered ConfigMap. The containers' command, args, environment and mounts are
taken from `helm template`, never re-typed here, so a chart that renders a wrong variable, path or
argument fails. The init-container variant runs the rendered init container, then the rendered
main container, against a shared temporary directory standing in for the emptyDir; with a Docker
engine, its init container also runs from the real indexed-worker image.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobworker.constants import ExitCode
from tests.support.helm import Helm, chart_path
from tests.support.images import BuiltImages
from tests.support.processes import JOBWORKER
from tests.support.rendered import LocalPod, Manifests, completion_index_fields

CHART = chart_path("indexed-job")
TEST_POD = "demo-indexed-job-test-items"
DOCS_ITEMS = ["foo", "bar", "baz", "qux", "xyz"]
DOCS_OUTPUT = ["oof", "rab", "zab", "xuq", "zyx"]
WORKER_IMAGE = {"items": DOCS_ITEMS, "command": ["rev"]}
INIT_VARIANT = {
    "items": DOCS_ITEMS,
    "programImage": {"repository": "docker.io/library/busybox", "tag": "1.36.1"},
    "command": ["rev", "/input/data.txt"],
}
INDEX_SOURCES = ["env", "downwardAPI"]


def job_pods(rendered: Manifests, directory: Path) -> list[LocalPod]:
    """One local pod per completion index of the rendered Job, 0 to completions-1."""
    job = rendered.get("Job")
    assert job["spec"]["completionMode"] == "Indexed"
    return [
        LocalPod(rendered, job, directory / f"pod-{index}", fields=completion_index_fields(index))
        for index in range(job["spec"]["completions"])
    ]


def index_source_logged(pod: LocalPod, index_source: str) -> str:
    """Where `jobworker indexed` says it read the index from (its one log line)."""
    if index_source == "downwardAPI":
        return f"(from index file {pod.volumes['index'] / 'completion-index'})"
    return "(from $JOB_COMPLETION_INDEX)"


# --- the worker image runs the program ------------------------------------------------------------
@pytest.mark.parametrize("index_source", INDEX_SOURCES)
@pytest.mark.parametrize("items_source", ["items", "itemsFile"])
def test_docs_example_with_the_worker_image_command(
    helm4: Helm, tmp_path: Path, index_source: str, items_source: str
):
    values = {**WORKER_IMAGE, "indexSource": index_source}
    set_file = None
    if items_source == "itemsFile":
        items_file = tmp_path / "items.txt"
        items_file.write_text("".join(f"{item}\n" for item in values.pop("items")))
        set_file = {"itemsFile": items_file}
    rendered = helm4.template(CHART, values, set_file=set_file)
    outputs = []
    for index, pod in enumerate(job_pods(rendered, tmp_path)):
        assert pod.init_containers == []
        worker = pod.container("worker")
        assert worker.argv == [*JOBWORKER, "indexed", "--", "rev"], "the image's ENTRYPOINT + args"
        assert worker.env["JOB_COMPLETION_INDEX"] == str(index)
        result = worker.run()
        assert result.returncode == 0, result.stderr
        assert index_source_logged(pod, index_source) in result.stderr.decode()
        outputs.append(result.stdout.decode())
    assert outputs == DOCS_OUTPUT


def test_the_programs_exit_status_is_the_pods_for_the_pod_failure_policy(helm4: Helm, tmp_path: Path):
    """A bad item's exit code reaches Kubernetes unchanged, so the FailIndex rule can match it."""
    script = 'read -r item; [ "$item" != baz ] || exit 42; echo "$item"'
    values = {
        "items": DOCS_ITEMS,
        "command": ["sh", "-c", script],
        "podFailurePolicy": {"failIndexExitCodes": [42]},
    }
    rendered = helm4.template(CHART, values)
    fail_index = rendered.get("Job")["spec"]["podFailurePolicy"]["rules"][-1]
    assert fail_index["action"] == "FailIndex"
    statuses = [pod.container("worker").run().returncode for pod in job_pods(rendered, tmp_path)]
    assert statuses == [0, 0, 42, 0, 0]
    assert 42 in fail_index["onExitCodes"]["values"]


def test_without_items_each_pod_gets_its_index(helm4: Helm, tmp_path: Path):
    """The docs' frame rendering: no items, the program gets {index} and $JOB_COMPLETION_INDEX."""
    command = ["sh", "-c", 'echo "frame {index} of 3, index $JOB_COMPLETION_INDEX"']
    rendered = helm4.template(CHART, {"completions": 3, "command": command})
    outputs = [pod.container("worker").run().stdout.decode() for pod in job_pods(rendered, tmp_path)]
    assert outputs == [f"frame {n} of 3, index {n}\n" for n in range(3)]


# --- the init-container variant -------------------------------------------------------------------
@pytest.mark.parametrize("index_source", INDEX_SOURCES)
def test_docs_example_with_the_init_container_variant(helm4: Helm, tmp_path: Path, index_source: str):
    """The rendered init container writes the pod's item to the emptyDir; the rendered main
    container, the docs' unmodified `rev`, reads it from there."""
    rendered = helm4.template(CHART, {**INIT_VARIANT, "indexSource": index_source})
    outputs = []
    for index, pod in enumerate(job_pods(rendered, tmp_path)):
        (init,) = pod.init_containers
        assert (init.name, init.argv) == ("input", [*JOBWORKER, "indexed"]), "the image's ENTRYPOINT"
        (written,) = pod.run_init_containers()
        assert written.returncode == 0, written.stderr
        assert index_source_logged(pod, index_source) in written.stderr.decode()
        item_file = pod.volumes["input"] / "data.txt"
        assert item_file.read_text() == DOCS_ITEMS[index]
        main = pod.container("worker")
        assert main.argv == ["rev", str(item_file)], "the rendered command, on the shared emptyDir"
        result = main.run()
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.decode())
    assert outputs == DOCS_OUTPUT


@pytest.mark.docker
@pytest.mark.parametrize("index_source", INDEX_SOURCES)
def test_docs_example_with_the_real_init_container_image(
    built_images: BuiltImages, helm4: Helm, tmp_path: Path, index_source: str
):
    """The rendered init container in the real indexed-worker image (read-only root, no
    capabilities, user 65532), with the rendered env and mounts (LocalPod.docker_containers); the
    main program, busybox's `rev`, whose image cannot be pulled here, runs locally on what it wrote."""
    rendered = helm4.template(CHART, {**INIT_VARIANT, "indexSource": index_source})
    job = rendered.get("Job")
    (init,) = job["spec"]["template"]["spec"]["initContainers"]
    assert init["image"] == built_images["indexed-worker"]
    outputs = []
    for pod in job_pods(rendered, tmp_path):
        (docker_init,), _ = pod.docker_containers()
        written = subprocess.run(docker_init.argv, capture_output=True, timeout=120, check=False)
        assert written.returncode == 0, written.stderr
        result = pod.container("worker").run()
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.decode())
    assert outputs == DOCS_OUTPUT


# --- the helm test pod ----------------------------------------------------------------------------
def run_test_pod(rendered: Manifests, directory: Path):
    """The rendered `helm test` pod, its `jobworker` from this checkout's virtual environment."""
    local = LocalPod(rendered, rendered.get("Pod", TEST_POD), directory)
    container = local.container("items")
    container.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    return container.run()


def with_items(rendered: Manifests, items: list[str]) -> Manifests:
    """The manifests with other items in the ConfigMap than the Job's completions were made for."""
    objects = copy.deepcopy(rendered.objects)
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            obj["data"]["items.json"] = json.dumps(items)
    return Manifests(objects)


def test_helm_test_pod_passes_when_every_index_has_its_item(helm4: Helm, tmp_path: Path):
    result = run_test_pod(helm4.template(CHART, INIT_VARIANT), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"indexes 0 to 4 each have an item: first foo, last xyz" in result.stdout


@pytest.mark.parametrize("items", [DOCS_ITEMS[:4], [*DOCS_ITEMS, "extra"]], ids=["fewer", "more"])
def test_helm_test_pod_fails_when_items_and_completions_disagree(helm4: Helm, tmp_path: Path, items: list):
    result = run_test_pod(with_items(helm4.template(CHART, WORKER_IMAGE), items), tmp_path)
    assert result.returncode == ExitCode.ERROR, result.stdout + result.stderr
    assert b"each have an item" not in result.stdout
