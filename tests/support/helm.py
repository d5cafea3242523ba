"""Rendering and linting the charts with the real `helm` binaries, Helm 3 and Helm 4.

The binaries come from the environment (HELM3, HELM4, as the Makefile exports them) or from the
pinned versions under .tools/. Values are passed as files, as a user passes them, so that the
schema and the templates see exactly what `helm install -f` would give them.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.manifests import Manifests

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
DEFAULT_BINARIES = {
    3: ("HELM3", REPO / ".tools" / "helm-3.18.0" / "helm"),
    4: ("HELM4", REPO / ".tools" / "helm-4.1.4" / "helm"),
}
DEFAULT_KUBE_VERSION = "1.35.0"
RELEASE = "demo"
NAMESPACE = "batch"
TIMEOUT = 120


class HelmError(AssertionError):
    """helm exited non-zero; the message holds its stderr."""

    def __init__(self, command: Sequence[str], result: subprocess.CompletedProcess) -> None:
        super().__init__(f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}")
        self.stderr = result.stderr
        self.returncode = result.returncode


@dataclass(frozen=True)
class Helm:
    """One helm binary of a known major version."""

    binary: Path
    major: int

    def __str__(self) -> str:
        return f"helm{self.major}"

    def run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.binary), *map(str, args)]
        # A KUBECONFIG pointing nowhere keeps every command off any cluster the machine may know.
        env = {**os.environ, "KUBECONFIG": os.devnull, "HELM_CACHE_HOME": _helm_home("cache"),
               "HELM_CONFIG_HOME": _helm_home("config"), "HELM_DATA_HOME": _helm_home("data")}  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                                check=False)  # fmt: skip
        if check and result.returncode != 0:
            raise HelmError(command, result)
        return result

    def dependency_build(self, chart: Path) -> None:
        self.run("dependency", "build", chart)

    def lint(
        self,
        chart: Path,
        values_files: Sequence[Path] = (),
        *,
        strict: bool = True,
        kube_version: str | None = None,
    ) -> subprocess.CompletedProcess:
        args: list[str | Path] = ["lint", chart]
        if strict:
            args.append("--strict")
        for values_file in values_files:
            args += ["--values", values_file]
        if kube_version:
            args += ["--kube-version", kube_version]
        return self.run(*args, check=False)

    def template(
        self,
        chart: Path,
        values: Mapping | None = None,
        *,
        values_files: Sequence[Path] = (),
        set_file: Mapping[str, Path] | None = None,
        kube_version: str = DEFAULT_KUBE_VERSION,
        release: str = RELEASE,
        namespace: str = NAMESPACE,
    ) -> Manifests:
        """`helm template` parsed into objects; HelmError when helm refuses the values."""
        with _values_args(values, values_files, set_file) as value_args:
            result = self.run("template", release, chart, "--namespace", namespace,
                              "--kube-version", kube_version, *value_args)  # fmt: skip
        return Manifests.parse(result.stdout)

    def template_error(
        self,
        chart: Path,
        values: Mapping | None = None,
        *,
        values_files: Sequence[Path] = (),
        set_file: Mapping[str, Path] | None = None,
        kube_version: str = DEFAULT_KUBE_VERSION,
    ) -> str:
        """helm's error output for values it must refuse; fails the test when it renders them."""
        with _values_args(values, values_files, set_file) as value_args:
            result = self.run("template", RELEASE, chart, "--namespace", NAMESPACE,
                              "--kube-version", kube_version, *value_args, check=False)  # fmt: skip
        if result.returncode == 0:
            refused = values or values_files
            raise AssertionError(f"{self} rendered values that it should have refused: {refused}")
        return result.stderr

    def notes(
        self,
        chart: Path,
        values: Mapping | None = None,
        *,
        values_files: Sequence[Path] = (),
        kube_version: str = DEFAULT_KUBE_VERSION,
    ) -> str:
        """NOTES.txt as `helm install` would print it for this Kubernetes version.

        `helm install --dry-run` takes no --kube-version (and Helm 3's still asks a cluster for it),
        so the notes are rendered by `helm template` from a copy of the chart where NOTES.txt is
        the body of a named template, rendered into a YAML string.
        """
        with tempfile.TemporaryDirectory(prefix="notes-") as directory:
            copy = Path(directory) / chart.name
            shutil.copytree(chart, copy)
            notes = copy / "templates" / "NOTES.txt"
            (copy / "templates" / "_notes-under-test.tpl").write_text(
                '{{- define "notes-under-test" -}}\n' + notes.read_text() + "{{- end }}\n"
            )
            notes.unlink()
            (copy / "templates" / "notes-under-test.yaml").write_text(
                'notes: {{ include "notes-under-test" . | toJson }}\n'
            )
            with _values_args(values, values_files, None) as value_args:
                result = self.run("template", RELEASE, copy, "--namespace", NAMESPACE,
                                  "--kube-version", kube_version,
                                  "--show-only", "templates/notes-under-test.yaml", *value_args)  # fmt: skip
        return yaml.safe_load(result.stdout)["notes"]


@contextlib.contextmanager
def _values_args(
    values: Mapping | None, values_files: Sequence[Path], set_file: Mapping[str, Path] | None
) -> Iterator[list[str]]:
    """--values/--set-file arguments; `values` go to a file of their own, as a user would pass them."""
    args: list[str] = []
    for values_file in values_files:
        args += ["--values", str(values_file)]
    with tempfile.TemporaryDirectory(prefix="values-") as directory:
        if values is not None:
            path = Path(directory) / "values.yaml"
            path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
            args += ["--values", str(path)]
        for key, file in (set_file or {}).items():
            args += ["--set-file", f"{key}={file}"]
        yield args


def _helm_home(kind: str) -> str:
    """Private helm cache/config/data directories: the tests never touch the user's repositories."""
    path = Path(tempfile.gettempdir()) / f"jobworker-tests-helm-{os.getuid()}" / kind
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def helm_binaries() -> list[Helm]:
    """Every pinned helm, Helm 3 and Helm 4; a missing one is an error, not a skip (make helm)."""
    found = []
    for major, (variable, default) in DEFAULT_BINARIES.items():
        binary = Path(os.environ.get(variable) or default)
        if not binary.is_absolute():
            binary = REPO / binary
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"helm {major} not found at {binary}: run `make helm` or set {variable}")
        found.append(Helm(binary, major))
    return found


def chart_path(name: str) -> Path:
    return CHARTS / name


def chart_defaults(chart: str) -> dict:
    """The chart's values.yaml, to compare rendered objects with the defaults users get."""
    return yaml.safe_load((CHARTS / chart / "values.yaml").read_text())


def ci_values_files(chart: str) -> list[Path]:
    return sorted((CHARTS / chart / "ci").glob("*-values.yaml"))
