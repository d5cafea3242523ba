"""The charts' default memory requests and limits fit what their containers use, within 2x.

bench/worker_resources.py runs each container of the charts' pods in its image, as the chart runs
it, and reports its peak memory; a request is at least half and at most twice that, a limit at
least that and at most twice. (CPU is left to the user's program: the worker's own is a fraction of
a second per run; the charts request 100m or less and allow a burst.)
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.images import BuiltImages

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20
# Each chart's containers: the values key of their resources, and the roles measured for them.
CONTAINERS = {
    ("fine-queue-job", "resources"): ("fine worker, handler", "fine worker, command"),
    ("coarse-queue-job", "resources"): ("coarse worker",),
    ("indexed-job", "resources"): ("indexed worker",),
    ("indexed-job", "input.resources"): ("indexed input",),
}


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


@pytest.fixture(scope="module")
def measured(built_images: BuiltImages) -> dict[str, dict]:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "worker_resources.py"), "--json"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.docker
@pytest.mark.parametrize(("chart", "key"), list(CONTAINERS), ids=[f"{c}:{k}" for c, k in CONTAINERS])
def test_default_memory_fits_the_measured_peak_within_2x(measured: dict[str, dict], chart: str, key: str):
    values = yaml.safe_load((REPO / "charts" / chart / "values.yaml").read_text())
    for part in key.split("."):
        values = values[part]
    peak = max(measured[role]["peak_bytes"] for role in CONTAINERS[chart, key]) / MIB
    request, limit = mebibytes(values["requests"]["memory"]), mebibytes(values["limits"]["memory"])
    assert peak / 2 <= request <= 2 * peak, (
        f"{chart} {key}: request {request} MiB for a peak of {peak:.1f} MiB"
    )
    assert peak <= limit <= 2 * peak, f"{chart} {key}: limit {limit} MiB for a peak of {peak:.1f} MiB"
