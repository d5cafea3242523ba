"""A small `helm` driver for the e2e tests (pytest-helm-charts has no Helm helpers).

The binary comes from HELM, else HELM4 (the Makefile exports both), else the pinned Helm 4 under
.tools, else `helm` on PATH: the e2e suite runs with Helm 4 unless told otherwise. On a cluster
without a registry (the local one of `make cluster`), IMAGE_MAP names the map of the stand-ins for
the official images, and every release's values point its images at them.
"""

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from localcluster.standins import ImageMap, stand_in_values

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS = REPO_ROOT / "charts"
VALUES = Path(__file__).resolve().parent / "values"
PINNED_HELM4 = REPO_ROOT / ".tools" / "helm-4.1.4" / "helm"


def helm_binary() -> str:
    for candidate in (os.environ.get("HELM"), os.environ.get("HELM4"), str(PINNED_HELM4)):
        if candidate and shutil.which(candidate):
            return candidate
    found = shutil.which("helm")
    if found is None:
        raise RuntimeError("no helm binary: set HELM, run `make helm`, or put helm on PATH")
    return found


def image_map() -> ImageMap | None:
    """The stand-ins to use (IMAGE_MAP), or None where the official images can be pulled."""
    path = os.environ.get("IMAGE_MAP")
    return ImageMap.read(Path(path)) if path else None


def load_values(name: str) -> dict[str, Any]:
    """The values of one e2e scenario, tests/e2e/values/<name>.yaml (adjust them there)."""
    return yaml.safe_load((VALUES / f"{name}.yaml").read_text()) or {}


class Helm:
    """Install, test and uninstall charts of this repository in one namespace of one cluster."""

    def __init__(
        self, binary: str, kubeconfig: str, namespace: str, workdir: Path, images: ImageMap | None = None
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.workdir = workdir
        self.images = images
        self.releases: list[str] = []

    def run(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        """Run helm against our cluster and namespace; on failure the assertion shows its output."""
        command = [self.binary, *args, "--kubeconfig", self.kubeconfig, "--namespace", self.namespace]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert result.returncode == 0, (
                f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def install(
        self,
        release: str,
        chart: str,
        values: Mapping[str, Any],
        extra_args: Sequence[str] = (),
        timeout: str = "10m",
    ) -> subprocess.CompletedProcess:
        """`helm install` charts/<chart> (dependencies built first), waiting for its workloads.

        `--wait` waits for the broker's StatefulSet, not for Jobs: the tests wait for those
        themselves, so that a failing Job can be examined rather than failing the install.
        """
        self.releases.append(release)
        return self._apply("install", release, chart, values, "--timeout", timeout, *extra_args)

    def upgrade(
        self, release: str, chart: str, values: Mapping[str, Any], timeout: str = "10m"
    ) -> subprocess.CompletedProcess:
        """`helm upgrade` of a release installed here, with these values, waiting as install does."""
        return self._apply("upgrade", release, chart, values, "--timeout", timeout)

    def _apply(
        self,
        action: str,
        release: str,
        chart: str,
        values: Mapping[str, Any],
        *args: str,
    ) -> subprocess.CompletedProcess:
        """`helm install|upgrade` with the values in a file (pointed at the stand-ins), then `args`."""
        chart_dir = CHARTS / chart
        assert (chart_dir / "Chart.yaml").is_file(), f"no chart {chart_dir}"
        dependencies = subprocess.run(
            [self.binary, "dependency", "build", "--skip-refresh", str(chart_dir)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert dependencies.returncode == 0, f"helm dependency build {chart}: {dependencies.stderr}"
        if self.images is not None:
            values = stand_in_values(chart_dir, values, self.images)
        values_file = self.workdir / f"{release}-{action}-values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values), sort_keys=False))
        return self.run(
            action,
            release,
            str(chart_dir),
            "--values",
            str(values_file),
            "--wait",
            *args,
        )

    def test(self, release: str, timeout: str = "5m") -> subprocess.CompletedProcess:
        """`helm test`: the chart's own test hooks; returns the result without asserting."""
        return self.run("test", release, "--timeout", timeout, "--logs", check=False)

    def uninstall(self, release: str) -> None:
        self.run("uninstall", release, "--wait", "--timeout", "5m", check=False)
        if release in self.releases:
            self.releases.remove(release)

    def uninstall_all(self) -> None:
        for release in list(reversed(self.releases)):
            self.uninstall(release)
