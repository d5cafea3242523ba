"""The stand-in Job controller (tests/support/jobcontroller.py) on real processes.

Small Jobs written here show each rule of the Job API the controller follows; the charts' Jobs run
under it in tests/charts/test_charts_under_the_job_controller.py.
"""

import collections
from pathlib import Path

from tests.support.jobcontroller import JobController, JobProgress
from tests.support.podrunners import ProcessPodRunner
from tests.support.rendered import Manifests


def job(script: str, restart_policy: str = "Never", **spec: object) -> dict:
    """A Job whose one container runs `sh -c script`; $MARKS is a directory shared by its pods."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "demo"},
        "spec": {
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": restart_policy,
                    "containers": [{"name": "main", "image": "any", "command": ["sh", "-c", script]}],
                }
            },
        },
    }


def run(tmp_path: Path, job_object: dict, progress: list | None = None):
    marks = tmp_path / "marks"
    marks.mkdir(exist_ok=True)
    job_object["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MARKS", "value": str(marks)}]
    runner = ProcessPodRunner(Manifests([job_object]), job_object, tmp_path / "pods", addresses={})
    controller = JobController(
        job_object, runner, on_progress=progress.append if progress is not None else None
    )
    return controller.run()


def test_a_work_queue_job_runs_parallelism_pods_and_completes_when_they_all_stopped(tmp_path):
    outcome = run(tmp_path, job("echo hello", parallelism=3))
    assert (outcome.succeeded, outcome.reason) == (True, "Complete")
    assert len(outcome.pods) == 3
    assert all(pod.logs == "hello\n" for pod in outcome.pods)


def test_a_work_queue_starts_no_pod_after_one_succeeded(tmp_path):
    # The first pod fails and is replaced; once one has succeeded, no further pod starts.
    script = 'if mkdir "$MARKS/first" 2>/dev/null; then exit 1; fi; exit 0'
    outcome = run(tmp_path, job(script, parallelism=1))
    assert [pod.exit_code for pod in outcome.pods] == [1, 0]
    assert outcome.succeeded


def test_completions_count_successes_and_never_run_more_at_once_than_parallelism(tmp_path):
    # ($$ would be Kubernetes' escape for a literal $, so each pod marks itself with mktemp.)
    script = 'f=$(mktemp -p "$MARKS"); n=$(ls "$MARKS" | wc -l); sleep 0.3; rm "$f"; echo "$n"'
    outcome = run(tmp_path, job(script, completions=5, parallelism=2))
    assert outcome.succeeded
    assert len(outcome.pods) == 5
    assert max(int(pod.logs) for pod in outcome.pods) <= 2


def test_an_indexed_job_runs_each_index_once_with_its_index(tmp_path):
    outcome = run(tmp_path, job('echo "index $JOB_COMPLETION_INDEX"', completions=5, parallelism=3,
                                completionMode="Indexed"))  # fmt: skip
    assert outcome.succeeded
    assert outcome.completed_indexes == [0, 1, 2, 3, 4]
    assert sorted(pod.logs for pod in outcome.pods) == [f"index {n}\n" for n in range(5)]
    assert {pod.index for pod in outcome.pods} == set(range(5))


def test_backoff_limit_fails_the_job(tmp_path):
    outcome = run(tmp_path, job("exit 1", backoffLimit=2))
    assert (outcome.succeeded, outcome.reason) == (False, "BackoffLimitExceeded")
    assert len(outcome.pods) == 3


def test_a_pod_failure_policy_rule_fails_the_job_at_once(tmp_path):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                                              "values": [3]}}]}  # fmt: skip
    outcome = run(tmp_path, job("exit 3", backoffLimit=6, podFailurePolicy=policy))
    assert (outcome.succeeded, outcome.reason) == (False, "PodFailurePolicy")
    assert len(outcome.pods) == 1


def test_ignored_exit_codes_do_not_count(tmp_path):
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}}]}
    script = 'if mkdir "$MARKS/a" 2>/dev/null || mkdir "$MARKS/b" 2>/dev/null; then exit 7; fi; exit 0'
    outcome = run(tmp_path, job(script, backoffLimit=0, podFailurePolicy=policy))
    assert outcome.succeeded
    assert [pod.exit_code for pod in outcome.pods] == [7, 7, 0]


def test_backoff_limit_per_index_fails_only_that_index(tmp_path):
    script = '[ "$JOB_COMPLETION_INDEX" != 1 ]'
    outcome = run(tmp_path, job(script, completions=3, parallelism=3, completionMode="Indexed",
                                backoffLimitPerIndex=1))  # fmt: skip
    assert (outcome.succeeded, outcome.reason) == (False, "FailedIndexes")
    assert outcome.completed_indexes == [0, 2]
    assert outcome.failed_indexes == [1]
    assert collections.Counter(pod.index for pod in outcome.pods)[1] == 2


def test_fail_index_stops_retrying_an_index(tmp_path):
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [42]}}]}
    script = '[ "$JOB_COMPLETION_INDEX" = 0 ] && exit 42; exit 0'
    outcome = run(tmp_path, job(script, completions=2, completionMode="Indexed", backoffLimitPerIndex=5,
                                podFailurePolicy=policy))  # fmt: skip
    assert outcome.failed_indexes == [0]
    assert len(outcome.pods) == 2


def test_restart_on_failure_runs_the_same_pod_again(tmp_path):
    script = 'if mkdir "$MARKS/once" 2>/dev/null; then exit 1; fi; echo again'
    outcome = run(tmp_path, job(script, restart_policy="OnFailure"))
    assert outcome.succeeded
    assert [pod.name for pod in outcome.pods] == ["demo-1", "demo-1"]


def test_active_deadline_stops_the_job(tmp_path):
    outcome = run(tmp_path, job("sleep 600", activeDeadlineSeconds=1))
    assert (outcome.succeeded, outcome.reason) == (False, "DeadlineExceeded")


def test_progress_is_reported(tmp_path):
    progress: list[JobProgress] = []
    run(tmp_path, job("true", completions=2), progress)
    assert progress[-1] == JobProgress(running=0, succeeded=2, failed=0, wanted=2)
