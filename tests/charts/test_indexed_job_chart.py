"""The indexed-job chart's rendered objects, field by field, with Helm 3 and Helm 4."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from devkit.docker import Mount
from jobworker.items import parse_lines, read_items
from tests.charts.checks import assert_restricted, env_of
from tests.charts.jobcharts import BUSYBOX, INDEXED, INDEXED_ITEMS, JOBWORKER_VARIABLES, values_of
from tests.support.helm import Helm, ci_values_files
from tests.support.images import BuiltImages, docker_run_argv, image_refs
from tests.support.manifests import COMPLETION_INDEX_FIELD, Manifests

CHART = INDEXED.path
WRITE_ITEM = Path(__file__).resolve().parents[2] / "images" / "jobworker-write-item"
JOB = INDEXED.fullname
DOCS_ITEMS = INDEXED_ITEMS
PROGRAM = INDEXED.values
INIT_VARIANT = {**INDEXED.values, **INDEXED.extra}
PER_INDEX_FIELDS = ("backoffLimitPerIndex", "maxFailedIndexes", "podReplacementPolicy")
BEFORE_PER_INDEX = ["1.27.0", "1.28.15"]  # supported (kubeVersion >=1.27), but no per-index fields
WITH_PER_INDEX = ["1.29.0", "1.31.4", "1.35.0"]


render, job_spec, pod_spec, worker = INDEXED.render, INDEXED.job_spec, INDEXED.pod_spec, INDEXED.worker


def input_container(manifests: Manifests) -> dict:
    (container,) = pod_spec(manifests)["initContainers"]
    assert container["name"] == "input"
    return container


def volumes_of(manifests: Manifests) -> dict[str, dict]:
    return {volume["name"]: volume for volume in pod_spec(manifests)["volumes"]}


def mounts_of(container: dict) -> dict[str, dict]:
    return {mount["mountPath"]: mount for mount in container["volumeMounts"]}


# --- the Job ---------------------------------------------------------------------------------------
def test_job_defaults_are_one_index_per_item_with_per_index_retries(helm: Helm):
    spec = job_spec(render(helm))
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == len(DOCS_ITEMS)
    assert "backoffLimit" not in spec, "Kubernetes' default: no total limit with a per-index one"
    assert spec["backoffLimitPerIndex"] == 2
    assert "maxFailedIndexes" not in spec
    assert spec["podReplacementPolicy"] == "Failed"
    for absent in ("successPolicy", "suspend"):
        assert absent not in spec, absent
    assert "initContainers" not in spec["template"]["spec"]


@pytest.mark.parametrize("count", [1, 3, 250])
def test_completions_are_the_number_of_items(helm: Helm, count: int):
    items = [f"item-{n}" for n in range(count)]
    assert job_spec(render(helm, {"items": items}))["completions"] == count


@pytest.mark.parametrize(
    "text",
    ["apple\nbanana split\n\ncherry\n", "one\r\ntwo\r\n\r\nthree", "\n\nlast line without newline", "  \n"],
    ids=["blank-line", "crlf", "leading-blanks", "spaces-are-an-item"],
)
def test_completions_of_an_items_file_are_the_items_the_worker_reads(helm: Helm, tmp_path: Path, text: str):
    """The chart counts lines as `jobworker indexed` reads them, so index N always has item N."""
    items_file = tmp_path / "items.txt"
    items_file.write_bytes(text.encode())
    rendered = helm.template(CHART, {"command": ["cat"]}, set_file={"itemsFile": items_file})
    assert job_spec(rendered)["completions"] == len(parse_lines(text.encode()))
    assert rendered.get("ConfigMap", f"{JOB}-items")["data"] == {"items.txt": text}
    assert values_of(worker(rendered))["ITEMS_FILE"] == "/etc/jobworker/items/items.txt"
    assert values_of(worker(rendered))["ITEMS_FORMAT"] == "lines"


def test_completions_may_repeat_the_number_of_items(helm: Helm):
    assert job_spec(render(helm, {"completions": len(DOCS_ITEMS)}))["completions"] == len(DOCS_ITEMS)
    error = helm.template_error(CHART, {**PROGRAM, "completions": 7})
    assert "completions (7) differs from the number of items (5)" in error


def test_without_items_completions_are_required_and_the_program_gets_its_index(helm: Helm):
    error = helm.template_error(CHART, {"command": ["render", "{index}"]})
    assert "completions is required without items or itemsFile" in error
    rendered = helm.template(CHART, {"command": ["render", "--frame", "{index}"], "completions": 12})
    assert job_spec(rendered)["completions"] == 12
    assert worker(rendered)["args"] == ["--", "render", "--frame", "{index}"]
    assert rendered.all("ConfigMap") == []
    assert set(volumes_of(rendered)) == {"tmp"}
    assert set(values_of(worker(rendered))) == {"LOG_FORMAT", "LOG_LEVEL"}, "no items, no delivery"
    assert rendered.find("Pod", f"{JOB}-test-items") is None, "the helm test checks items"


def test_per_index_settings_come_from_values(helm: Helm):
    spec = job_spec(render(helm, {"backoffLimit": 10, "backoffLimitPerIndex": 0, "maxFailedIndexes": 3}))
    assert spec["backoffLimit"] == 10
    assert spec["backoffLimitPerIndex"] == 0
    assert spec["maxFailedIndexes"] == 3
    without = job_spec(render(helm, {"backoffLimitPerIndex": None}))
    assert "backoffLimitPerIndex" not in without
    assert without["podReplacementPolicy"] == "Failed"


# --- Kubernetes versions ---------------------------------------------------------------------------
FAILING_VALUES = {"maxFailedIndexes": 2, "podFailurePolicy": {"failIndexExitCodes": [42]},
                  "successPolicy": {"rules": [{"succeededIndexes": "0-1", "succeededCount": 1}]}}  # fmt: skip


@pytest.mark.parametrize("kube_version", WITH_PER_INDEX)
def test_per_index_fields_where_the_cluster_has_them(helm: Helm, kube_version: str):
    spec = job_spec(render(helm, FAILING_VALUES, kube_version=kube_version))
    assert spec["backoffLimitPerIndex"] == 2
    assert spec["maxFailedIndexes"] == 2
    assert spec["podReplacementPolicy"] == "Failed"
    assert "backoffLimit" not in spec
    fail_index = spec["podFailurePolicy"]["rules"][-1]
    assert fail_index == {
        "action": "FailIndex",
        "onExitCodes": {"containerName": "worker", "operator": "In", "values": [42]},
    }


@pytest.mark.parametrize("kube_version", BEFORE_PER_INDEX)
def test_no_per_index_fields_on_older_clusters(helm: Helm, kube_version: str):
    spec = job_spec(render(helm, FAILING_VALUES, kube_version=kube_version))
    for field in PER_INDEX_FIELDS:
        assert field not in spec, field
    assert "successPolicy" not in spec
    assert "backoffLimit" not in spec, "Kubernetes' default of 6 then applies to the whole Job"
    actions = [rule["action"] for rule in spec["podFailurePolicy"]["rules"]]
    assert actions == ["Ignore"], "FailIndex needs backoffLimitPerIndex"
    assert spec["completionMode"] == "Indexed"


@pytest.mark.parametrize(
    ("kube_version", "rendered"),
    [("1.27.0", False), ("1.29.0", False), ("1.30.5", False), ("1.31.0", True), ("1.35.0", True)],
)
def test_success_policy_only_from_1_31(helm: Helm, kube_version: str, rendered: bool):
    rules = [{"succeededIndexes": "0,2-3"}, {"succeededCount": 4}]
    spec = job_spec(render(helm, {"successPolicy": {"rules": rules}}, kube_version=kube_version))
    assert ("successPolicy" in spec) is rendered
    if rendered:
        assert spec["successPolicy"] == {"rules": rules}
    assert "successPolicy" not in job_spec(render(helm, kube_version=kube_version)), "no rules, no policy"


def test_charts_kube_version_refuses_clusters_older_than_1_27(helm: Helm):
    error = helm.template_error(CHART, PROGRAM, kube_version="1.26.15")
    assert "kubeVersion: >=1.27.0-0" in error


# --- pod failure policy ----------------------------------------------------------------------------
def test_pod_failure_policy_rules_disruptions_first_then_the_exit_codes(helm: Helm):
    values = {"podFailurePolicy": {"failIndexExitCodes": [42, 43], "failJobExitCodes": [2]}}
    rules = job_spec(render(helm, values))["podFailurePolicy"]["rules"]
    assert rules == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]}},
        {
            "action": "FailIndex",
            "onExitCodes": {"containerName": "worker", "operator": "In", "values": [42, 43]},
        },
    ]


def test_exit_code_rules_satisfy_the_schema_of_1_27_and_1_28(helm: Helm):
    """Their OpenAPI schemas require onPodConditions in every rule; an empty list matches nothing."""
    values = {"podFailurePolicy": {"failJobExitCodes": [2]}}
    for kube_version, expected in (("1.28.0", {"onPodConditions": []}), ("1.29.0", {})):
        _, fail_job = job_spec(render(helm, values, kube_version=kube_version))["podFailurePolicy"]["rules"]
        assert fail_job == {
            "action": "FailJob",
            "onExitCodes": {"containerName": "worker", "operator": "In", "values": [2]},
            **expected,
        }


def test_pod_failure_policy_can_be_left_out(helm: Helm):
    assert "podFailurePolicy" not in job_spec(render(helm, {"podFailurePolicy": {"enabled": False}}))
    only_fail_index = {"podFailurePolicy": {"failIndexExitCodes": [42], "ignoreDisruptions": False}}
    assert "podFailurePolicy" not in job_spec(render(helm, only_fail_index, kube_version="1.28.0")), (
        "no rule applies on 1.28: no empty policy"
    )
    relaxed = {"podFailurePolicy": {"enabled": False}, "podReplacementPolicy": "TerminatingOrFailed"}
    assert job_spec(render(helm, relaxed))["podReplacementPolicy"] == "TerminatingOrFailed"


# --- the worker image variant ----------------------------------------------------------------------


def test_worker_gets_the_items_and_the_delivery_but_never_the_index_itself(helm: Helm):
    rendered = render(helm, {"delivery": "env", "logFormat": "json", "logLevel": "DEBUG"})
    assert values_of(worker(rendered)) == {
        "ITEMS_FILE": "/etc/jobworker/items/items.json",
        "ITEMS_FORMAT": "json",
        "ITEM_DELIVERY": "env",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "DEBUG",
    }
    assert "JOB_COMPLETION_INDEX" not in env_of(worker(rendered)), "the Job controller adds it"
    assert mounts_of(worker(rendered))["/etc/jobworker/items"] == {
        "name": "items",
        "mountPath": "/etc/jobworker/items",
        "readOnly": True,
    }


@pytest.mark.parametrize("variant", [PROGRAM, INIT_VARIANT], ids=["worker-image", "init-container"])
@pytest.mark.parametrize("index_source", ["env", "downwardAPI"])
def test_chart_sets_only_variables_the_worker_reads(helm: Helm, variant: dict, index_source: str):
    rendered = helm.template(CHART, {**variant, "indexSource": index_source})
    containers = pod_spec(rendered)["containers"] + pod_spec(rendered).get("initContainers", [])
    test_pod = rendered.get("Pod", f"{JOB}-test-items")["spec"]["containers"]
    for container in containers + test_pod:
        assert set(env_of(container)) <= JOBWORKER_VARIABLES, container["name"]
        assert "JOB_COMPLETION_INDEX" not in env_of(container), container["name"]


def test_items_are_a_json_array_in_a_config_map(helm: Helm):
    items = [*DOCS_ITEMS, 42, "two\nlines", "  spaced  "]
    rendered = render(helm, {"items": items})
    config_map = rendered.get("ConfigMap", f"{JOB}-items")
    assert json.loads(config_map["data"]["items.json"]) == items
    assert volumes_of(rendered)["items"] == {"name": "items", "configMap": {"name": f"{JOB}-items"}}
    annotations = job_spec(rendered)["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/items"]) == 64


def test_downward_api_variant_gives_the_index_as_a_file(helm: Helm):
    rendered = render(helm, {"indexSource": "downwardAPI"})
    assert volumes_of(rendered)["index"] == {
        "name": "index",
        "downwardAPI": {
            "items": [{"path": "completion-index", "fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}}]
        },
    }
    container = worker(rendered)
    assert values_of(container)["INDEX_FILE"] == "/etc/jobworker/index/completion-index"
    assert mounts_of(container)["/etc/jobworker/index"] == {
        "name": "index",
        "mountPath": "/etc/jobworker/index",
        "readOnly": True,
    }
    assert "index" not in volumes_of(render(helm)), "env: no downward API volume"
    assert "INDEX_FILE" not in values_of(worker(render(helm)))


# --- the init-container variant --------------------------------------------------------------------
def test_init_container_variant_runs_the_users_image_unmodified(helm: Helm):
    rendered = helm.template(CHART, INIT_VARIANT)
    init = input_container(rendered)
    assert init["image"] == image_refs()["indexed-worker"]
    assert init["command"] == ["jobworker-write-item"], "sh, sed and base64: no Python start per pod"
    assert "args" not in init
    assert values_of(init) == {
        "ITEMS_FILE": "/etc/jobworker/items/items.b64",
        "WRITE_ITEM_PATH": "/input/data.txt",
    }
    assert rendered.get("ConfigMap", f"{JOB}-items")["data"] == {
        "items.b64": "Zm9v\nYmFy\nYmF6\ncXV4\neHl6\n"
    }
    assert mounts_of(init) == {
        "/etc/jobworker/items": {"name": "items", "mountPath": "/etc/jobworker/items", "readOnly": True},
        "/input": {"name": "input", "mountPath": "/input"},
        "/tmp": {"name": "tmp", "mountPath": "/tmp"},
    }
    main = worker(rendered)
    assert main["image"] == "docker.io/library/busybox:1.36.1"
    assert main["command"] == ["rev", "/input/data.txt"]
    assert "args" not in main
    assert "env" not in main, "no jobworker variables for a program that is not jobworker"
    assert mounts_of(main) == {
        "/tmp": {"name": "tmp", "mountPath": "/tmp"},
        "/input": {"name": "input", "mountPath": "/input", "readOnly": True},
    }
    assert volumes_of(rendered) == {
        "tmp": {"name": "tmp", "emptyDir": {}},
        "items": {"name": "items", "configMap": {"name": f"{JOB}-items"}},
        "input": {"name": "input", "emptyDir": {}},
    }


def test_init_container_variant_with_the_downward_api_and_another_item_path(helm: Helm):
    image = {"repository": "registry.example/tools/convert", "digest": "sha256:" + "a" * 64}
    values = {**INIT_VARIANT, "indexSource": "downwardAPI", "itemPath": "/work/in/item.bin",
              "command": [], "args": ["--input", "/work/in/item.bin"], "programImage": image}  # fmt: skip
    rendered = helm.template(CHART, values)
    init = input_container(rendered)
    assert values_of(init)["INDEX_FILE"] == "/etc/jobworker/index/completion-index"
    assert values_of(init)["WRITE_ITEM_PATH"] == "/work/in/item.bin"
    assert set(mounts_of(init)) == {"/etc/jobworker/items", "/etc/jobworker/index", "/work/in", "/tmp"}
    main = worker(rendered)
    assert main["image"] == "registry.example/tools/convert@sha256:" + "a" * 64
    assert "command" not in main, "the image's own entrypoint, given args"
    assert main["args"] == ["--input", "/work/in/item.bin"]
    assert set(mounts_of(main)) == {"/tmp", "/work/in"}


TRICKY_ITEMS = ["foo", "two\nlines", "  spaced  ", "ünïcode ✓", "tab\there", "<&>", "ends \\", "cr\r",
                42, -3, 1.5, 1e-7, 0.000001, 12345678901234567890]  # fmt: skip
TRICKY_FILES = ["apple\nbanana split\n\ncherry\n", "one\r\ntwo\r\n\r\nthree", "  \n", "ünïcode\n"]


@pytest.mark.parametrize(
    ("items", "text"),
    [(TRICKY_ITEMS, None), *((None, text) for text in TRICKY_FILES)],
    ids=["items", "file-blank-line", "file-crlf", "file-spaces", "file-unicode"],
)
def test_init_container_writes_the_item_the_worker_image_reads(helm: Helm, tmp_path: Path, items, text):
    """The two variants hold the items in two forms (items.json or items.txt for `jobworker indexed`,
    base64 lines for jobworker-write-item): every index must get the same bytes from both."""
    if items is not None:
        values, set_file = {"items": items}, None
    else:
        (tmp_path / "items.txt").write_text(text)
        values, set_file = {}, {"itemsFile": tmp_path / "items.txt"}
    worker_image = helm.template(CHART, {"command": ["cat"], **values}, set_file=set_file)
    init_variant = helm.template(CHART, {**INIT_VARIANT, "items": None, **values}, set_file=set_file)
    ((key, data),) = worker_image.get("ConfigMap", f"{JOB}-items")["data"].items()
    (tmp_path / key).write_text(data)
    expected = read_items(str(tmp_path / key))
    assert job_spec(init_variant)["completions"] == job_spec(worker_image)["completions"] == len(expected)
    (tmp_path / "items.b64").write_text(init_variant.get("ConfigMap", f"{JOB}-items")["data"]["items.b64"])
    for index, item in enumerate(expected):
        env = {"ITEMS_FILE": str(tmp_path / "items.b64"), "WRITE_ITEM_PATH": str(tmp_path / "item"),
               "JOB_COMPLETION_INDEX": str(index), "PATH": os.environ["PATH"]}  # fmt: skip
        result = subprocess.run(["sh", str(WRITE_ITEM)], env=env, capture_output=True, check=False)
        assert result.returncode == 0, result.stderr.decode()
        assert (tmp_path / "item").read_bytes() == item, index


def test_init_container_items_must_fit_a_config_map_in_base64(helm: Helm):
    """base64 makes the items a third longer: a list that fits as JSON may not fit as lines."""
    items = [f"item-{number:095}" for number in range(8000)]  # 824 kB as JSON, 1.1 MB in base64
    helm.template(CHART, {"command": ["cat"], "items": items})
    error = helm.template_error(CHART, {**INIT_VARIANT, "items": items})
    assert "the items take more than 1000000 bytes in base64" in error


def test_users_image_without_items_reads_its_index_itself(helm: Helm):
    values = {"programImage": BUSYBOX, "command": ["sh", "-c", "echo frame $JOB_COMPLETION_INDEX"],
              "completions": 3, "indexSource": "downwardAPI"}  # fmt: skip
    rendered = helm.template(CHART, values)
    assert "initContainers" not in pod_spec(rendered)
    main = worker(rendered)
    assert values_of(main) == {"INDEX_FILE": "/etc/jobworker/index/completion-index"}
    assert set(mounts_of(main)) == {"/tmp", "/etc/jobworker/index"}


# --- pods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("values_file", ci_values_files("indexed-job"), ids=lambda path: path.name)
def test_ci_variants_stay_restricted(helm: Helm, values_file: Path):
    rendered = helm.template(CHART, values_files=[values_file])
    assert_restricted(rendered)
    assert pod_spec(rendered)["automountServiceAccountToken"] is False
    assert pod_spec(rendered)["restartPolicy"] == "Never"


def test_helm_test_pod_checks_every_index_has_an_item(helm: Helm):
    pod = render(helm).get("Pod", f"{JOB}-test-items")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["image"] == image_refs()["indexed-worker"]
    script = container["command"][2]
    assert 'write() { jobworker indexed --index "$1" --write-item "$2"; }' in script
    assert "last=4" in script
    assert "if write 5 /tmp/past" in script
    init_variant = helm.template(CHART, INIT_VARIANT).get("Pod", f"{JOB}-test-items")["spec"]["containers"][0]
    assert "jobworker-write-item; }" in init_variant["command"][2], "what the init container runs"
    assert render(helm, {"tests": {"enabled": False}}).find("Pod", f"{JOB}-test-items") is None


@pytest.mark.docker
@pytest.mark.parametrize("variant", [PROGRAM, INIT_VARIANT], ids=["worker-image", "init-container"])
def test_helm_test_pod_passes_on_the_items_and_fails_without_the_last(
    helm: Helm, built_images: BuiltImages, variant: dict
):
    """The test pod run in the worker image, as the cluster runs it, on the ConfigMap's items."""
    rendered = helm.template(CHART, variant)
    container = rendered.get("Pod", f"{JOB}-test-items")["spec"]["containers"][0]
    ((key, data),) = rendered.get("ConfigMap", f"{JOB}-items")["data"].items()
    without_last = (
        json.dumps(json.loads(data)[:-1]) if key.endswith(".json") else "".join(data.splitlines(True)[:-1])
    )

    def run_test_pod(items: str) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as directory:  # not tmp_path: user 65532 must read it
            Path(directory).chmod(0o755)
            (Path(directory) / key).write_text(items)
            argv = docker_run_argv(
                built_images["indexed-worker"],
                command=container["command"],
                env=values_of(container),
                mounts=[Mount(Path(directory), "/etc/jobworker/items")],
            )
            return subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False
            )

    passed = run_test_pod(data)
    assert passed.returncode == 0, passed.stderr
    assert "indexes 0 to 4 each have an item: first foo, last xyz" in passed.stdout
    failed = run_test_pod(without_last)
    assert failed.returncode != 0
    assert "past the end" in failed.stderr


def test_job_name_must_leave_room_for_the_last_index(helm: Helm):
    """Kubernetes names each pod's host <job>-<index>, a DNS label of 63 characters at most."""
    name = "n" * 61
    helm.template(CHART, {**PROGRAM, "fullnameOverride": name, "items": list(range(10))})  # "-9" fits
    error = helm.template_error(CHART, {**PROGRAM, "fullnameOverride": name, "items": list(range(11))})
    assert f'the Job\'s name "{name}" is too long for 11 indexes' in error


def test_defaults_pass_the_schema_and_ask_only_for_the_work(helm: Helm):
    """There is no sensible default program nor item: installing without them names what to set."""
    error = helm.template_error(CHART, {})
    assert "completions is required without items or itemsFile" in error
    assert "command is empty" in error
    assert "schema" not in error, "the defaults of values.yaml must satisfy values.schema.json"


# --- NOTES.txt -------------------------------------------------------------------------------------
def test_notes_say_which_indexes_completed_or_failed_and_how_to_read_one(helm: Helm):
    notes = helm.notes(CHART, PROGRAM)
    assert "Job demo-indexed-job runs indexes 0 to 4 (completions 5), 2 pod(s) at once." in notes
    assert f"kubectl wait --namespace batch --for=condition=complete --timeout=24h job/{JOB}" in notes
    assert f"kubectl get job --namespace batch {JOB} -o jsonpath='{{.status.completedIndexes}}" in notes
    assert f"kubectl get job --namespace batch {JOB} -o jsonpath='{{.status.failedIndexes}}" in notes
    selector = f"-l batch.kubernetes.io/job-name={JOB},batch.kubernetes.io/job-completion-index=3 -c worker"
    assert selector in notes
    assert "has no per-index retries" not in notes
    assert "-c input" not in notes


def test_notes_on_the_oldest_clusters(helm: Helm):
    values = {**PROGRAM, "successPolicy": {"rules": [{"succeededCount": 1}]}}
    notes = helm.notes(CHART, values, kube_version="1.27.4")
    assert "failedIndexes" not in notes.split("Note:")[0], "no failedIndexes without backoffLimitPerIndex"
    assert "this cluster (v1.27.4) has no per-index retries" in notes
    assert "has no Job success policy" in notes
    assert "job-completion-index=3" not in notes, "no index label before 1.28"
    assert "INDEX:.metadata.annotations.batch\\.kubernetes\\.io/job-completion-index" in notes
    assert "has no Job success policy" not in helm.notes(CHART, values, kube_version="1.31.0")


def test_notes_of_the_init_container_variant(helm: Helm):
    notes = helm.notes(CHART, {**INIT_VARIANT, "podFailurePolicy": {"failIndexExitCodes": [42]}})
    assert 'init container "input" writes it to\n/input/data.txt' in notes
    assert f"-l batch.kubernetes.io/job-name={JOB} -c input --prefix" in notes
    assert "Exit codes 42 of your program fail the index at once" in notes


# --- bad values ------------------------------------------------------------------------------------
def test_bad_values_cases_cover_the_chart():
    """tests/charts/test_chart_bad_values.py runs each file under bad-values/indexed-job/."""
    cases = sorted((Path(__file__).parent / "bad-values" / "indexed-job").glob("*.yaml"))
    assert len(cases) >= 15


def test_all_value_checks_are_reported_at_once(helm: Helm):
    values = {"items": ["a"], "itemsFile": "b\n", "command": [], "maxFailedIndexes": 4,
              "podReplacementPolicy": "TerminatingOrFailed"}  # fmt: skip
    error = helm.template_error(CHART, values)
    assert "items and itemsFile are both set" in error
    assert "command is empty" in error
    assert "maxFailedIndexes (4) is above completions (1)" in error
    assert 'podReplacementPolicy is "TerminatingOrFailed"' in error
