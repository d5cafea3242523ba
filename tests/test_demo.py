"""`make demo`'s local path (tests/support/demo.py), run as `make demo` runs it without a cluster,
with the outputs the Kubernetes docs show for their three examples."""

import io

import pytest

from tests.support.demo import FRUITS, WORDS, ExampleResult, run_demo
from tests.support.images import BuiltImages


def check_the_docs_outcomes(results: list[ExampleResult]) -> None:
    fine, coarse, indexed = results
    assert [result.reason for result in results] == ["Complete"] * 3

    # fine: 2 workers, every fruit processed once, both exit 0
    assert [pod.exit_code for pod in fine.pods] == [0, 0]
    assert sorted(item for pod in fine.pods for item in pod.processed) == sorted(FRUITS)
    for pod in fine.pods:  # each worker leases in the order the items were pushed
        assert pod.processed == sorted(pod.processed, key=FRUITS.index)
    assert "done 10, failed 0" in fine.after

    # coarse: 8 completions, 2 at a time, one message per pod
    assert (coarse.completions, coarse.parallelism) == (8, 2)
    assert [pod.exit_code for pod in coarse.pods] == [0] * 8
    assert all(len(pod.processed) == 1 for pod in coarse.pods)
    assert sorted(pod.processed[0] for pod in coarse.pods) == sorted(FRUITS[:8])
    assert "ready 0" in coarse.after

    # indexed: foo bar baz qux xyz through rev give oof rab zab xuq zyx at indexes 0..4
    assert (indexed.completions, indexed.parallelism) == (5, 3)
    assert {pod.index: pod.processed for pod in indexed.pods} == {
        index: [word[::-1]] for index, word in enumerate(WORDS)
    }


def test_the_demo_with_pods_as_processes():
    out = io.StringIO()
    results = run_demo("local", out=out, docker=False)
    check_the_docs_outcomes(results)
    text = out.getvalue()
    assert text.startswith("No cluster: asked to run locally.")
    assert "a test harness (tests/support/jobcontroller.py) stands in for the Job controller" in text
    assert "fine     fine-queue-job" in text


@pytest.mark.docker
def test_the_demo_with_pods_as_containers_of_the_built_images(built_images: BuiltImages):
    out = io.StringIO()
    results = run_demo("local", out=out, docker=True)
    check_the_docs_outcomes(results)
    # The worker images ran as containers; only busybox (no registry here) may stand in as a process.
    for result in results:
        assert all(stand_in.startswith("docker.io/library/busybox") for stand_in in result.stand_ins)
