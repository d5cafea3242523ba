#!/usr/bin/env python3
"""Render every chart at a git revision and in the working tree, and report what differs.

Both sides render the same inputs, taken from the working tree: each application chart with its
defaults, with each of its ci/*-values.yaml (at every Kubernetes minor version from the chart's
oldest, its Chart.yaml kubeVersion, to NEWEST_KUBERNETES), and with each values file of
tests/charts/bad-values/<chart>/ (which must be refused with the same message), each with Helm 3
and Helm 4. The objects are compared as parsed YAML, together with NOTES.txt (rendered as the
object {"notes": TEXT}); a refusal is compared as helm's whole error output.

The revision is checked out into a temporary `git worktree`, the working tree's charts are
copied, and each copy gets its dependencies built (file://, nothing is downloaded), so the
checkout is left as it is. The values helm draws at random (generated passwords, the Erlang
cookie) differ on every render: a Secret's value that differs on the two sides is taken for such
a value, and not reported, when both are random letters and digits of one length.

Usage: scripts/compare-renders.py --base REV [--chart NAME]... [--helm3 PATH] [--helm4 PATH] [--jobs N]
Exit status: 0 when every render is the same, 1 when any differs (each difference is printed).
"""

import argparse
import base64
import binascii
import concurrent.futures
import copy
import difflib
import graphlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BAD_VALUES = REPO / "tests" / "charts" / "bad-values"
# The pinned helm binaries (make helm), unless HELM3/HELM4 (as the Makefile exports them) or the
# options name others.
DEFAULT_HELMS = {3: REPO / ".tools" / "helm-3.18.0" / "helm", 4: REPO / ".tools" / "helm-4.1.4" / "helm"}
NEWEST_KUBERNETES = (1, 35)
RELEASE = "demo"
NAMESPACE = "batch"
# NOTES.txt is not part of `helm template`'s output: this template renders it as an object. Helm
# renders the templates of a directory in reverse order of name, so this one comes last and a
# refusal still comes from the template that gives it in a real install.
NOTES_TEMPLATE = "0-compare-renders-notes.yaml"
NOTES_SOURCE = 'notes: {{ include (print $.Template.BasePath "/NOTES.txt") . | toJson }}\n'
RANDOM = re.compile(r"[A-Za-z0-9]{16,}")


@dataclass(frozen=True)
class Case:
    """One render: a chart with a values file (or its defaults), at a Kubernetes version."""

    chart: str
    values: Path | None
    kube_version: str

    def __str__(self) -> str:
        if self.values is None:
            values = "its defaults"
        elif BAD_VALUES in self.values.parents:
            values = self.values.relative_to(REPO)
        else:
            values = f"charts/{self.chart}/ci/{self.values.name}"
        return f"{self.chart} with {values} at Kubernetes {self.kube_version}"


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    # A KUBECONFIG that points nowhere keeps helm off any cluster this machine may know.
    env = {**os.environ, "KUBECONFIG": os.devnull}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, check=False)


def chart_metadata(chart_dir: Path) -> dict:
    return yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}


def application_charts(charts_dir: Path) -> list[str]:
    return [
        path.parent.name
        for path in sorted(charts_dir.glob("*/Chart.yaml"))
        if chart_metadata(path.parent).get("type") != "library"
    ]


def build_dependencies(helm: Path, charts_dir: Path) -> None:
    """`helm dependency build` of every chart, each after the file:// charts it packages."""
    graph = graphlib.TopologicalSorter()
    for chart_yaml in sorted(charts_dir.glob("*/Chart.yaml")):
        local = [
            (chart_yaml.parent / dependency["repository"].removeprefix("file://")).resolve().name
            for dependency in chart_metadata(chart_yaml.parent).get("dependencies") or []
            if dependency.get("repository", "").startswith("file://")
        ]
        graph.add(chart_yaml.parent.name, *local)
    for name in graph.static_order():
        result = run([str(helm), "dependency", "build", "--skip-refresh", str(charts_dir / name)])
        if result.returncode != 0:
            raise SystemExit(f"compare-renders: helm dependency build {charts_dir / name}: {result.stderr}")


def copy_charts(source: Path, destination: Path) -> None:
    """The charts without their built dependencies, each with the template that renders its notes."""

    def built_dependencies(directory: str, _: list[str]) -> list[str]:
        return [] if directory == str(source) else ["charts"]

    shutil.copytree(source, destination, ignore=built_dependencies)
    for name in application_charts(destination):
        if (destination / name / "templates" / "NOTES.txt").exists():
            (destination / name / "templates" / NOTES_TEMPLATE).write_text(NOTES_SOURCE)


def kube_versions(chart_dir: Path) -> list[str]:
    found = re.search(r">=\s*v?(\d+)\.(\d+)", chart_metadata(chart_dir).get("kubeVersion", ""))
    if not found:
        raise SystemExit(f"compare-renders: {chart_dir}/Chart.yaml has no kubeVersion lower bound")
    major, oldest = int(found.group(1)), int(found.group(2))
    return [f"{major}.{minor}.0" for minor in range(oldest, NEWEST_KUBERNETES[1] + 1)]


def cases(charts_dir: Path) -> list[Case]:
    found = []
    for chart in application_charts(charts_dir):
        versions = kube_versions(charts_dir / chart)
        for values in [None, *sorted((charts_dir / chart / "ci").glob("*-values.yaml"))]:
            found += [Case(chart, values, version) for version in versions]
        found += [Case(chart, values, versions[-1]) for values in sorted((BAD_VALUES / chart).glob("*.yaml"))]
    return found


def render(helm: Path, charts_dir: Path, case: Case) -> tuple[str, object]:
    """("objects", [objects]) of a render, or ("refused", stderr) when helm refuses it."""
    command = [str(helm), "template", RELEASE, str(charts_dir / case.chart), "--namespace", NAMESPACE]
    command += ["--kube-version", case.kube_version]
    command += ["--values", str(case.values)] if case.values else []
    result = run(command)
    if result.returncode != 0:
        return "refused", result.stderr.replace(str(charts_dir), "<charts>")
    return "objects", [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def random_pair(before: str, after: str) -> bool:
    """Whether two base64 values of a Secret are both random letters and digits of one length."""
    try:
        decoded = [base64.b64decode(value, validate=True).decode() for value in (before, after)]
    except (binascii.Error, UnicodeDecodeError):
        return False
    return all(RANDOM.fullmatch(value) for value in decoded) and len(decoded[0]) == len(decoded[1])


def mask_random(before: list[dict], after: list[dict]) -> None:
    """Blank, on both sides, the Secret values that differ only as random values do."""
    secrets = {obj["metadata"]["name"]: obj for obj in before if obj.get("kind") == "Secret"}
    for obj in after:
        other = secrets.get(obj["metadata"]["name"]) if obj.get("kind") == "Secret" else None
        if other is None:
            continue
        for key, value in (obj.get("data") or {}).items():
            theirs = (other.get("data") or {}).get(key)
            if theirs is not None and theirs != value and random_pair(theirs, value):
                obj["data"][key] = other["data"][key] = "<random>"


def identity(obj: dict) -> str:
    if "notes" in obj:
        return "NOTES.txt"
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def as_text(obj: dict) -> str:
    """An object as sorted YAML; the notes as their text, which reads better in a diff."""
    return f"{obj['notes']}\n" if "notes" in obj else yaml.safe_dump(obj, sort_keys=True)


def differences(before: tuple[str, object], after: tuple[str, object]) -> str:
    """A unified diff of the two renders, "" when they are the same."""
    if before[0] == after[0] == "objects":
        before, after = copy.deepcopy(before), copy.deepcopy(after)
        mask_random(before[1], after[1])
    texts = []
    for kind, result in (before, after):
        if kind == "refused":
            texts.append(f"refused:\n{result}")
        else:
            objects = sorted(result, key=identity)
            texts.append("".join(f"--- {identity(obj)}\n{as_text(obj)}" for obj in objects))
    if texts[0] == texts[1]:
        return ""
    diff = difflib.unified_diff(
        texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True), "base", "working tree"
    )
    return "".join(diff)


def checkout_charts(commit: str, root: Path) -> dict[str, Path]:
    """The charts at `commit` (from a temporary `git worktree`) and of the working tree, copied
    under `root`, by side."""
    worktree = root / "base"
    added = run(["git", "worktree", "add", "--detach", str(worktree), commit], cwd=REPO)
    if added.returncode != 0:
        raise SystemExit(f"compare-renders: git worktree add: {added.stderr}")
    try:
        sides = {"base": root / "base-charts", "working tree": root / "work-charts"}
        copy_charts(worktree / "charts", sides["base"])
        copy_charts(REPO / "charts", sides["working tree"])
    finally:
        run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO)
    return sides


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the git revision to compare with (e.g. HEAD)")
    for major, default in DEFAULT_HELMS.items():
        variable = f"HELM{major}"
        parser.add_argument(f"--helm{major}", type=Path, default=Path(os.environ.get(variable) or default))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="renders run at once")
    parser.add_argument("--chart", action="append", help="compare this chart only (repeatable)")
    args = parser.parse_args()
    helms = {f"helm{major}": getattr(args, f"helm{major}").resolve() for major in DEFAULT_HELMS}
    for name, binary in helms.items():
        if not os.access(binary, os.X_OK):
            parser.error(f"no {name} at {binary} (make helm, or --{name} PATH)")
    revision = run(["git", "rev-parse", "--verify", f"{args.base}^{{commit}}"], cwd=REPO)
    if revision.returncode != 0:
        parser.error(f"--base {args.base}: not a revision of this repository")
    commit = revision.stdout.strip()

    with tempfile.TemporaryDirectory(prefix="compare-renders-") as temporary:
        sides = checkout_charts(commit, Path(temporary))
        for charts_dir in sides.values():
            build_dependencies(helms[f"helm{max(DEFAULT_HELMS)}"], charts_dir)
        one_side = set(application_charts(sides["working tree"])) ^ set(application_charts(sides["base"]))
        if one_side:
            print(f"compare-renders: charts on one side only: {', '.join(sorted(one_side))}")
            return 1
        work = [
            (helm, case)
            for case in cases(sides["working tree"])
            if not args.chart or case.chart in args.chart
            for helm in helms
        ]

        def compare(item: tuple[str, Case]) -> str:
            helm, case = item
            return differences(
                render(helms[helm], sides["base"], case), render(helms[helm], sides["working tree"], case)
            )

        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            diffs = list(pool.map(compare, work))

    differing = [(item, diff) for item, diff in zip(work, diffs, strict=True) if diff]
    for (helm, case), diff in differing:
        print(f"=== {helm}: {case}\n{diff}")
    refused = sum(1 for _, case in work if case.values and BAD_VALUES in case.values.parents)
    print(
        f"compare-renders: {args.base} ({commit[:12]}) against the working tree, {len(work)} renders on each"
        f" side with Helm 3 and Helm 4 ({len(work) - refused} of defaults and ci values, {refused} of bad"
        f" values): {len(differing)} differ"
    )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
