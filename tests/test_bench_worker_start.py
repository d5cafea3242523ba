"""bench/worker_start.py (`make bench-images`): a small run on the built images, and its refusals.

The run checks what the numbers rest on, not the numbers: every worker ran as often as asked in
both variants, and the baseline really is an image without the standard library's bytecode while
the image as built has it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import BuiltImages

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "worker_start.py"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.docker
def test_a_small_run_times_each_worker_with_and_without_the_stdlib_bytecode(built_images: BuiltImages):
    result = bench("--json", "--rounds", "1", "--runs", "2", *built_images.refs.values())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["base"] == built_images.base
    assert report["python"].startswith("Python 3.")
    assert {worker["image"] for worker in report["workers"]} == set(built_images.refs)
    for worker in report["workers"]:
        assert worker["runs"] == 2, worker
        assert worker["median_ms_with_stdlib_bytecode"] > 0, worker
        assert worker["median_ms_without_stdlib_bytecode"] > 0, worker
        assert worker["stdlib_pyc_files"]["with"] > 0, worker
        assert worker["stdlib_pyc_files"]["without"] == 0, worker
    # The table form prints the same run's figures, one line per image.
    table = bench("--rounds", "1", "--runs", "1", built_images["indexed-worker"])
    assert table.returncode == 0, table.stderr[-3000:]
    assert "indexed-worker" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runs", "0"], "argument --runs: must be at least 1, not 0"),
        (["--rounds", "-1"], "argument --rounds: must be at least 1, not -1"),
        (["example.invalid/not-a-worker:1"], "example.invalid/not-a-worker:1: not a worker image"),
    ],
)
def test_bad_arguments_are_refused_in_one_line_before_anything_runs(args: list[str], message: str):
    result = bench(*args)
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1]
