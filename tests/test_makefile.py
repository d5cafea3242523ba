"""The Makefile: one block of variables, each set once, and the targets doing what the README says."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAKEFILE = (REPO / "Makefile").read_text()
ASSIGNMENT = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*(\?=|:=|=)", re.MULTILINE)


def make_dry_run(*args: str) -> str:
    result = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


def test_each_variable_is_set_once():
    names = [match.group(1) for match in ASSIGNMENT.finditer(MAKEFILE)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"set more than once: {repeated}"


def test_the_variables_are_one_block_before_the_first_target():
    first_rule = re.search(r"^[.A-Za-z$(][^=\n]*:(?!=)", MAKEFILE, re.MULTILINE)
    assert first_rule is not None
    after = MAKEFILE[first_rule.start() :]
    assert not ASSIGNMENT.findall(after), "a variable is set among the targets"


def test_make_e2e_uses_the_kind_cluster_the_readme_names():
    commands = make_dry_run("e2e")
    assert "kind create cluster --name jobworker " in commands
    assert "kind get kubeconfig --name jobworker " in commands
    assert "--name kind " not in commands
    assert "cluster `jobworker`" in (REPO / "README.md").read_text()
