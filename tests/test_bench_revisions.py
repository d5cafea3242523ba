"""--compare REV of the benchmarks that run the worker as of a git revision (devkit/revisions.py):
a revision git cannot read is one line naming it and a non-zero exit."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Each benchmark with --compare, and the arguments of its smallest run.
BENCHES = {
    "fine_queue.py": ("--items", "500", "--workers", "2", "--repeat", "1"),
    "coarse_queue.py": ("--messages", "2", "--seed-items", "10"),
}


@pytest.mark.parametrize(("script", "small"), BENCHES.items(), ids=list(BENCHES))
def test_compare_with_a_revision_git_cannot_read_is_one_line(script: str, small: tuple[str, ...]):
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *small, "--compare", "no-such-revision"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("cannot read jobworker as of revision 'no-such-revision': "), line
    assert "no-such-revision" in line.split(": ", 1)[1], line  # git's own reason names it again
