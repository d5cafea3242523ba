"""`make cluster-down` leaves nothing behind and is safe to run twice; `make cluster` then starts
a new cluster from nothing. This test takes the session's cluster down and brings it back."""

import json
import subprocess
from pathlib import Path

from tests.cluster.conftest import REPO, make

STATE = Path("/var/lib/jobworker-cluster")


def traces() -> list[str]:
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "localcluster", "traces"],
        cwd=REPO, env={"PYTHONPATH": "cluster", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return [] if result.returncode == 0 else result.stdout.splitlines()


def test_cluster_down_leaves_nothing_behind_twice_then_the_cluster_starts_again(local_cluster: Path):
    assert traces(), "a running cluster shows traces: the check can see them"
    created = json.loads((STATE / "created-paths.json").read_text())

    first = make("cluster-down")
    assert first.returncode == 0, first.stdout + first.stderr
    assert traces() == []
    assert [path for path in created if Path(path).exists()] == []
    assert not (REPO / ".cluster").exists()
    second = make("cluster-down")
    assert second.returncode == 0, second.stdout + second.stderr
    assert traces() == []

    again = make("cluster")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "localcluster: started a cluster" in again.stderr
    assert local_cluster.exists()
