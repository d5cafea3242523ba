"""bench/fine_queue.py (`make bench`): a small run against its own redis-server.

It checks what the numbers rest on, not the numbers: each contender drained every item (the bench
fails otherwise), the ratio is of the two rates it reports, and --compare runs the worker as of a
revision (the bench fails if that worker imports the work tree's package).
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "fine_queue.py"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), "--items", "500", "--workers", "2", "--repeat", "1", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_small_run_compares_the_worker_with_the_docs_pattern_and_a_revision():
    result = bench("--json", "--compare", "HEAD")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert (report["items"], report["workers"], report["compared_with"]) == (500, 2, "HEAD")
    for contender in ("baseline", "jobworker", "jobworker@HEAD"):
        assert report[contender]["seconds"] > 0, contender
    rates = report["jobworker"]["items_per_second"] / report["baseline"]["items_per_second"]
    assert report["ratio"] == round(rates, 1)
    assert isinstance(report["time_change_percent"], float)
