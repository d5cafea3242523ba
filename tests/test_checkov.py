"""checkov scans every chart in charts/: no failed check, and every skipped check says why.

Each chart is rendered with the real Helm 4 the way chart-testing installs it (once per
ci/*-values.yaml, or with its defaults when it has none) into a namespace of its own, and checkov's
kubernetes framework scans the manifests offline. A chart skips a check on purpose with an
annotation on the object, `checkov.io/skip1: CKV_K8S_43=<one-line reason>`; a skip without a
reason fails here. checkov lives in its own virtual environment (`make ci-tools`).
"""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# Library charts (jobworker-common) render nothing; the charts that include them are scanned.
CHARTS = sorted(
    path.parent
    for path in (REPO_ROOT / "charts").glob("*/Chart.yaml")
    if (yaml.safe_load(path.read_text()) or {}).get("type") != "library"
)
NAMESPACE = "checkov-scan"
NO_REASON = {"", "No comment provided"}  # what checkov reports for a skip without a reason


def tool(variable: str, default: Path) -> str:
    """A tool from the environment (the Makefile exports it) or its default place in the repo."""
    path = Path(os.environ.get(variable) or default)
    path = path if path.is_absolute() else REPO_ROOT / path
    assert path.exists(), f"{path} is missing: run `make ci-tools` (or `make helm`)"
    return str(path)


def helm() -> str:
    return tool("HELM4", REPO_ROOT / ".tools" / "helm-4.1.4" / "helm")


def render(chart: Path, out: Path) -> list[Path]:
    """Render the chart once per ci values file (or with its defaults) into `out`; the files."""
    subprocess.run(
        [helm(), "dependency", "build", "--skip-refresh", str(chart)], check=True, capture_output=True
    )
    variants = sorted((chart / "ci").glob("*-values.yaml")) or [None]
    rendered = []
    for values in variants:
        name = f"{chart.name}-{values.stem if values else 'defaults'}.yaml"
        command = [helm(), "template", "scan", str(chart), "--namespace", NAMESPACE]
        command += ["--values", str(values)] if values else []
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stderr}"
        (out / name).write_text(result.stdout)
        rendered.append(out / name)
    return rendered


def scan(directory: Path) -> list[dict[str, Any]]:
    """checkov's JSON report on the manifests in `directory`, one entry per framework run."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BC_", "PRISMA_"))}
    env["BC_SKIP_MAPPING"] = "TRUE"  # no download of the guideline mapping: offline
    command = [tool("CHECKOV", REPO_ROOT / ".venv-checkov" / "bin" / "checkov")]
    command += ["--directory", str(directory), "--framework", "kubernetes", "--skip-download"]
    command += ["--output", "json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode in {0, 1}, f"checkov exited {result.returncode}: {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    return [report] if isinstance(report, dict) else report


def results(report: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [check for run in report for check in run.get("results", {}).get(kind, [])]


def summary(report: list[dict[str, Any]]) -> dict[str, int]:
    totals = {"resource_count": 0, "passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
    for run in report:
        for key in totals:
            totals[key] += run.get("summary", run).get(key, 0)
    return totals


def describe(check: dict[str, Any]) -> str:
    return (
        f"{check['check_id']} {check['resource']} in {Path(check['file_path']).name}: {check['check_name']}"
    )


def assert_clean(report: list[dict[str, Any]]) -> None:
    totals = summary(report)
    assert totals["resource_count"] > 0, f"checkov scanned nothing: {totals}"
    assert totals["parsing_errors"] == 0, totals
    failed = [describe(check) for check in results(report, "failed_checks")]
    assert not failed, (
        "checkov failed checks (fix them, or skip one in the chart with a reason):\n" + "\n".join(failed)
    )
    unexplained = [
        describe(check)
        for check in results(report, "skipped_checks")
        if (check.get("check_result") or {}).get("suppress_comment", "").strip() in NO_REASON
    ]
    assert not unexplained, "skipped without a reason (checkov.io/skipN: ID=reason):\n" + "\n".join(
        unexplained
    )


@pytest.mark.parametrize(
    "chart",
    [pytest.param(chart, id=chart.name) for chart in CHARTS]
    or [pytest.param(None, id="no-charts", marks=pytest.mark.skip(reason="no chart in charts/ yet"))],
)
def test_checkov_finds_no_failed_check_in_the_chart(chart: Path, tmp_path: Path):
    render(chart, tmp_path)
    assert_clean(scan(tmp_path))


TINY_JOB = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-tiny
  namespace: {{ .Release.Namespace }}
  annotations:
    checkov.io/skip1: CKV_K8S_43=images are referenced by release tag, not digest
spec:
  backoffLimit: 1
  template:
    metadata:
      labels: {app.kubernetes.io/name: tiny}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: main
          image: ghcr.io/jobworker/indexed-worker:0.1.0
          imagePullPolicy: Always
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {cpu: 100m, memory: 64Mi}
          securityContext:
            privileged: {{ .Values.privileged }}
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {drop: [ALL]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .Release.Name }}-tiny
  namespace: {{ .Release.Namespace }}
spec:
  podSelector:
    matchLabels: {app.kubernetes.io/name: tiny}
  policyTypes: [Ingress]
"""


def tiny_chart(root: Path, ci_values: dict[str, str]) -> Path:
    """A one-Job chart, hardened as ours must be, with the given ci/*-values.yaml files."""
    chart = root / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "ci").mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: 0.1.0\n")
    (chart / "values.yaml").write_text("privileged: false\n")
    (chart / "templates" / "job.yaml").write_text(TINY_JOB)
    for name, text in ci_values.items():
        (chart / "ci" / f"{name}-values.yaml").write_text(text)
    return chart


def test_the_scan_passes_a_hardened_chart_and_catches_a_privileged_pod(tmp_path: Path):
    chart = tiny_chart(tmp_path / "src", {"default": "{}\n", "privileged": "privileged: true\n"})
    out = tmp_path / "rendered"
    out.mkdir()
    rendered = render(chart, out)
    assert [path.name for path in rendered] == ["tiny-default-values.yaml", "tiny-privileged-values.yaml"]

    report = scan(out)

    failed = {
        (check["check_id"], Path(check["file_path"]).name) for check in results(report, "failed_checks")
    }
    assert failed == {("CKV_K8S_16", "tiny-privileged-values.yaml")}
    with pytest.raises(AssertionError, match="CKV_K8S_16"):
        assert_clean(report)
    (out / "tiny-privileged-values.yaml").unlink()
    assert_clean(scan(out))  # the hardened variant, with its one skip and its reason
