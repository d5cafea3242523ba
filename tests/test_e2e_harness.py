"""The e2e harness itself, where no cluster runs: its Job predicates, its skip, `make e2e`'s checks."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pykube
from pytest_helm_charts.k8s.job import _job_complete

from tests.e2e.cluster import cluster_unavailable_reason, job_complete, job_failed, processed_items

REPO_ROOT = Path(__file__).resolve().parents[1]

# A Job that finished on Kubernetes 1.31+: SuccessCriteriaMet comes before Complete.
COMPLETED_JOB = {
    "metadata": {"name": "done"},
    "status": {
        "succeeded": 2,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached"},
        ],
    },
}
# A Job failed by its podFailurePolicy: FailureTarget first, then Failed.
FAILED_JOB = {
    "metadata": {"name": "failed"},
    "status": {
        "failed": 1,
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"},
            {"type": "Failed", "status": "True", "reason": "PodFailurePolicy"},
        ],
    },
}
RUNNING_JOB = {"metadata": {"name": "running"}, "status": {"active": 2}}


def job(obj: dict) -> pykube.Job:
    return pykube.Job(None, obj)


def test_a_job_is_complete_when_any_condition_says_so():
    assert job_complete(job(COMPLETED_JOB))
    assert not _job_complete(job(COMPLETED_JOB))  # why the plugin's own wait is not used
    assert not job_complete(job(FAILED_JOB))
    assert not job_complete(job(RUNNING_JOB))


def test_a_job_has_failed_when_any_condition_says_so():
    assert job_failed(job(FAILED_JOB))
    assert not job_failed(job(COMPLETED_JOB))
    assert not job_failed(job(RUNNING_JOB))
    suspended = {"status": {"conditions": [{"type": "Failed", "status": "False"}]}}
    assert not job_failed(job(suspended))


def test_processed_items_are_read_from_the_markers_of_the_test_program():
    log = "2026-01-01 INFO jobworker.fine: item done: apple\nprocessed:apple\nprocessed:date \nnoise\n"
    assert processed_items(log) == ["apple", "date"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_kubeconfig(directory: Path) -> Path:
    path = directory / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'https://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: nobody, user: {token: none}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: nobody}}]\n"
    )
    return path


def test_the_reason_names_what_is_missing(tmp_path: Path):
    assert (
        cluster_unavailable_reason(None)
        == "no Kubernetes cluster: neither --kubeconfig nor KUBECONFIG is set"
    )
    missing = tmp_path / "nowhere"
    assert (
        cluster_unavailable_reason(str(missing))
        == f"no Kubernetes cluster: the kubeconfig {missing} does not exist"
    )
    reason = cluster_unavailable_reason(str(unreachable_kubeconfig(tmp_path)))
    assert reason.startswith("no Kubernetes cluster: the API server https://127.0.0.1:")
    assert "is unreachable" in reason
    assert "Connection refused" in reason


def run_e2e_suite(env_changes: dict[str, str | None], *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in {"KUBECONFIG", "REQUIRE_CLUSTER"}}
    env.update({key: value for key, value in env_changes.items() if value is not None})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/e2e", "-p", "no:cacheprovider", "-q", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_without_a_cluster_every_e2e_test_skips_with_one_reason_in_the_summary():
    result = run_e2e_suite({})
    assert result.returncode == 0, result.stdout + result.stderr
    skipped = re.findall(r"^SKIPPED \[(\d+)\] (\S+):\d+: (.*)$", result.stdout, re.MULTILINE)
    count = int(re.search(r"(\d+) skipped", result.stdout).group(1))
    assert count >= 6  # two per pattern
    assert skipped == [
        (
            str(count),
            "tests/e2e/conftest.py",
            "no Kubernetes cluster: neither --kubeconfig nor KUBECONFIG is set",
        )
    ]
    assert "passed" not in result.stdout
    assert "failed" not in result.stdout


def test_an_unreachable_api_server_skips_the_e2e_tests(tmp_path: Path):
    result = run_e2e_suite({}, "--kubeconfig", str(unreachable_kubeconfig(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"^SKIPPED \[\d+\] .*: no Kubernetes cluster: the API server .* is unreachable", result.stdout, re.M
    )


def test_when_a_cluster_is_required_its_absence_is_an_error(tmp_path: Path):
    kubeconfig = str(unreachable_kubeconfig(tmp_path))
    result = run_e2e_suite({"KUBECONFIG": kubeconfig, "REQUIRE_CLUSTER": "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skipped" not in result.stdout
    assert re.search(r"^\d+ errors in ", result.stdout, re.M), result.stdout
    assert "no Kubernetes cluster: the API server https://127.0.0.1:" in result.stdout


def test_make_e2e_names_the_missing_tools():
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "e2e",
            "KIND=kind-is-not-installed",
            "KUBECTL=kubectl-is-not-installed",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert "make e2e: missing kind-is-not-installed kubectl-is-not-installed" in result.stderr


def test_make_e2e_test_wants_a_kubeconfig(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    env["KUBECONFIG"] = str(tmp_path / "absent")
    result = subprocess.run(
        ["make", "--no-print-directory", "e2e-test"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert f"make e2e-test: no kubeconfig at '{tmp_path / 'absent'}'" in result.stderr


def test_make_e2e_test_fails_rather_than_skips_when_the_cluster_is_unreachable(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if key != "REQUIRE_CLUSTER"}
    env["KUBECONFIG"] = str(unreachable_kubeconfig(tmp_path))
    result = subprocess.run(
        ["make", "--no-print-directory", "e2e-test", "E2E_ARGS=-p no:cacheprovider"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode != 0
    assert "skipped" not in result.stdout
    assert "no Kubernetes cluster: the API server https://127.0.0.1:" in result.stdout
