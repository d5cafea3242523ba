"""--compare REV of the benchmarks that run the worker as of a git revision (devkit/revisions.py):
a revision git cannot read is one line naming it and a non-zero exit."""

import subprocess
from collections.abc import Callable

import pytest

from tests.test_bench_coarse_queue import bench as coarse_queue
from tests.test_bench_fine_queue import bench as fine_queue

Bench = Callable[..., subprocess.CompletedProcess]  # a bench's smallest run, given more arguments


@pytest.mark.parametrize("bench", [fine_queue, coarse_queue], ids=["fine_queue.py", "coarse_queue.py"])
def test_compare_with_a_revision_git_cannot_read_is_one_line(bench: Bench):
    result = bench("--compare", "no-such-revision")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("cannot read jobworker as of revision 'no-such-revision': "), line
    assert "no-such-revision" in line.split(": ", 1)[1], line  # git's own reason names it again
