"""A stand-in for the Kubernetes Job controller, for machines where no cluster can run.

This is a test harness, not a Kubernetes: it runs the pods of one rendered batch/v1 Job through a
PodRunner (local processes, or Docker containers) and decides, as the Job controller would, when
to start a pod, when to replace one and when the Job is finished. It honours

- parallelism, and completions: unset (a work queue: no new pod once one has succeeded, done when
  all have stopped), a number of successes, or completionMode Indexed (each index 0..N-1 succeeds
  once; JOB_COMPLETION_INDEX is set in every container);
- backoffLimit, backoffLimitPerIndex and maxFailedIndexes, activeDeadlineSeconds;
- restartPolicy: Never replaces a failed pod; OnFailure runs the same pod again (the kubelet would
  restart its containers in place), counted against backoffLimit all the same;
- podFailurePolicy rules on exit codes (FailJob, FailIndex, Ignore, Count, first match wins).
  Rules on pod conditions never match: nothing evicts a local pod.

What it does not do: scheduling, resources, node affinity, probes, pod conditions, or anything a
Job does not decide itself. Its verdicts use the reasons Kubernetes uses (BackoffLimitExceeded,
PodFailurePolicy, FailedIndexes, DeadlineExceeded).
"""

import collections
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PodResult:
    """A pod that stopped: its exit code is that of the first container that failed, else 0."""

    name: str
    index: int | None
    exit_code: int
    container: str
    logs: str  # every container's stdout and stderr, in the order they ran
    container_logs: Mapping[str, str] = field(default_factory=dict)  # each container's own

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


class RunningPod(Protocol):
    name: str
    index: int | None

    def poll(self) -> PodResult | None:
        """The result once the pod has stopped, None while it runs."""

    def terminate(self) -> None:
        """Stop the pod (SIGTERM, then SIGKILL after a grace period) and wait for it."""


class PodRunner(Protocol):
    def start(self, name: str, index: int | None) -> RunningPod:
        """Start one pod of the Job's template; `index` is its completion index (Indexed Jobs)."""


@dataclass
class JobOutcome:
    name: str
    succeeded: bool
    reason: str  # Complete, or the reason Kubernetes gives a failed Job
    pods: list[PodResult] = field(default_factory=list)
    completed_indexes: list[int] = field(default_factory=list)
    failed_indexes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class JobProgress:
    """What a progress display needs, reported after every change."""

    running: int
    succeeded: int
    failed: int
    wanted: int | None  # successes needed, None for a work queue


def failure_action(rules: list[Mapping], result: PodResult) -> str:
    """The action of the first podFailurePolicy rule matching the pod's exit code, else Count."""
    for rule in rules:
        on_exit = rule.get("onExitCodes")
        if not on_exit:
            continue  # onPodConditions: no condition (DisruptionTarget...) arises locally
        if on_exit.get("containerName") not in (None, result.container):
            continue
        listed = result.exit_code in on_exit["values"]
        if listed == (on_exit["operator"] == "In"):
            return rule["action"]
    return "Count"


class JobController:
    """Runs one Job to its end; `run()` returns the verdict."""

    def __init__(
        self,
        job: Mapping,
        runner: PodRunner,
        on_progress: Callable[[JobProgress], None] | None = None,
        poll_seconds: float = 0.05,
    ) -> None:
        spec = job["spec"]
        self.name = job["metadata"]["name"]
        self.runner = runner
        self.on_progress = on_progress
        self.poll_seconds = poll_seconds
        self.parallelism = spec.get("parallelism", 1)
        self.completions = spec.get("completions")
        self.indexed = spec.get("completionMode") == "Indexed"
        self.backoff_limit = spec.get("backoffLimit", 6)
        self.per_index_limit = spec.get("backoffLimitPerIndex")
        self.max_failed_indexes = spec.get("maxFailedIndexes")
        self.deadline = spec.get("activeDeadlineSeconds")
        self.rules = (spec.get("podFailurePolicy") or {}).get("rules", [])
        self.restart_in_place = spec["template"]["spec"].get("restartPolicy") == "OnFailure"
        if self.indexed and self.completions is None:
            raise ValueError(f"Job {self.name}: an Indexed Job needs completions")

    def run(self) -> JobOutcome:
        outcome = JobOutcome(self.name, succeeded=False, reason="")
        pending = collections.deque(range(self.completions)) if self.indexed else collections.deque()
        running: list[RunningPod] = []
        failures = 0
        failures_of_index: collections.Counter[int] = collections.Counter()
        started_at = time.monotonic()
        serial = 0

        def fail(reason: str) -> JobOutcome:
            for pod in running:
                pod.terminate()
                result = pod.poll()
                if result is not None:
                    outcome.pods.append(result)
            outcome.reason = reason
            outcome.completed_indexes.sort()
            outcome.failed_indexes.sort()
            return outcome

        while True:
            while len(running) < self.parallelism and self._wants_pod(outcome, pending, running):
                index = pending.popleft() if self.indexed else None
                serial += 1
                suffix = f"{index}-{serial}" if self.indexed else str(serial)
                running.append(self.runner.start(f"{self.name}-{suffix}", index))
            if not running:
                break
            if self.deadline is not None and time.monotonic() - started_at > self.deadline:
                return fail("DeadlineExceeded")
            for pod in list(running):
                result = pod.poll()
                if result is None:
                    continue
                running.remove(pod)
                outcome.pods.append(result)
                if result.succeeded:
                    if self.indexed:
                        outcome.completed_indexes.append(result.index)
                    continue
                action = failure_action(self.rules, result)
                if action == "FailJob":
                    return fail("PodFailurePolicy")
                if action == "FailIndex" and self.indexed:
                    outcome.failed_indexes.append(result.index)
                elif action == "Ignore":
                    self._again(pod, pending, running)
                else:
                    failures += 1
                    if self.per_index_limit is not None and self.indexed:
                        failures_of_index[result.index] += 1
                        if failures_of_index[result.index] > self.per_index_limit:
                            outcome.failed_indexes.append(result.index)
                        else:
                            self._again(pod, pending, running)
                    elif failures > self.backoff_limit:
                        return fail("BackoffLimitExceeded")
                    else:
                        self._again(pod, pending, running)
                if (
                    self.max_failed_indexes is not None
                    and len(outcome.failed_indexes) > self.max_failed_indexes
                ):
                    return fail("MaxFailedIndexesExceeded")
            self._report(outcome, running)
            time.sleep(self.poll_seconds)

        self._report(outcome, running)
        if outcome.failed_indexes:
            return fail("FailedIndexes")
        outcome.succeeded, outcome.reason = True, "Complete"
        outcome.completed_indexes.sort()
        return outcome

    def _wants_pod(self, outcome: JobOutcome, pending: collections.deque, running: list) -> bool:
        succeeded = sum(result.succeeded for result in outcome.pods)
        if self.indexed:
            return bool(pending)
        if self.completions is None:
            return succeeded == 0  # a work queue: once one pod succeeded, the work is done
        return succeeded + len(running) < self.completions

    def _again(self, pod: RunningPod, pending: collections.deque, running: list) -> None:
        """A failed pod's work runs again: the same pod in place with OnFailure, else a new one."""
        if self.restart_in_place:
            running.append(self.runner.start(pod.name, pod.index))
        elif self.indexed:
            pending.appendleft(pod.index)

    def _report(self, outcome: JobOutcome, running: list) -> None:
        if self.on_progress is not None:
            succeeded = sum(result.succeeded for result in outcome.pods)
            wanted = self.completions
            self.on_progress(JobProgress(len(running), succeeded, len(outcome.pods) - succeeded, wanted))
