"""bench/cluster_jobs.py --quick on the local cluster: one small run of each pattern, ours against
the docs' original, and the JSON the README's table is made from."""

import json
from pathlib import Path

from tests.cluster.conftest import make

FIELDS = {
    "pattern", "items", "parallelism", "ours_seconds", "docs_seconds", "ours_pod_seconds", "docs_pod_seconds",
    "ours_idle_pod_seconds", "docs_idle_pod_seconds", "ours_processing_seconds", "docs_processing_seconds",
    "ours_start_seconds", "docs_start_seconds", "repeats",
}  # fmt: skip


def test_the_quick_benchmark_runs_every_pattern_against_the_docs(local_cluster: Path):
    result = make("bench-cluster", "BENCH_ARGS=--quick --json", timeout=1800)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    runs = report["runs"]
    assert [run["pattern"] for run in runs] == [
        "fine", "coarse", "coarse (filled first)", "indexed", "indexed (init container)"
    ]  # fmt: skip
    for run in runs:
        assert set(run) >= FIELDS, sorted(FIELDS - set(run))
        assert run["ours_items_done"] == run["docs_items_done"] == run["items"], run  # every item, both sides
        assert run["ours_seconds"] > 0
        assert run["docs_seconds"] > 0
        # A pod's first item comes after its scheduling and before the Job is complete.
        assert 0 < run["ours_start_seconds"] < run["ours_seconds"], run
        assert 0 < run["docs_start_seconds"] < run["docs_seconds"], run
        # Idle time is a part of the pods' running time.
        assert run["ours_idle_pod_seconds"] <= run["ours_pod_seconds"], run
        assert run["docs_idle_pod_seconds"] <= run["docs_pod_seconds"], run
        assert run["repeats"] == 1
    assert report["cluster"].startswith("v1.")
