"""The fine-grained work-queue worker: many items per pod from a Redis list.

The loop: acknowledge the last batch and lease the next in one call; run each item (a program per
item, or an in-process handler); repeat until the queue is finished. A finished queue is empty
with nothing in flight, and, when a producer marked it, sealed. While a lease is held, a heartbeat
thread keeps it alive, so an item may run for hours; if the worker dies instead, the lease
expires and another worker takes the items over.

The worker keeps Redis told where it is in a lease, so that a lost worker is charged an attempt
only for the item it was running (the rules, and why they hold at any instant, are in redisqueue's
docstring). Before an item starts, its index is written to the lease's Tracker, then the stop
request is checked: so the heartbeat, reading the tracker from its own thread, never reports a
position past an item that may be running, and after a stop request nothing starts past the
position it reads. A command reports each item before it starts it (stride 1); a handler every
`stride` items, a stride chosen from its measured speed so that reports stay rare.

On SIGTERM the heartbeat hands back the items not started at once. A program that outlives
--grace-seconds is stopped by the runner, and its item handed back; an in-process handler cannot
be stopped, so past the grace period the heartbeat hands its item back and ends the process: an
eviction is not the item's fault, and charges it nothing either way.
"""

import abc
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from jobworker.constants import (
    STATE_OPEN,
    STATE_SEALED,
    ExitCode,
)
from jobworker.errors import JobWorkerError
from jobworker.handlers import Handler
from jobworker.logs import preview
from jobworker.redisqueue import Ack, Lease, QueueChanges, QueueView, RedisQueue
from jobworker.runner import CommandRunner
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)

POLL_MIN_SECONDS = 0.02  # idle workers poll, backing off up to POLL_MAX_SECONDS (cheap for Redis)
POLL_MAX_SECONDS = 0.25
# A handler tells Redis its position in a lease about once per this much work (a round trip
# each), so that a lost worker is charged for the item it was running; fast handlers never need to.
POSITION_REPORT_SECONDS = 0.02
STOP_CHECK_SECONDS = 0.1  # how soon after SIGTERM the heartbeat hands back items not started


class FineSettings(NamedTuple):
    batch_size: int
    lease_seconds: float
    max_attempts: int
    wait_seconds: float  # give up after this long on an open queue that brings no work
    wait_for_seal: bool  # treat a queue with no end-of-input marker as open, not as filled by hand
    progress_seconds: float  # handler mode: a progress line this often
    grace_seconds: float = 0.0  # after SIGTERM, how long a handler's item may still run


class Tracker:
    """Where the worker is in one lease, shared by the thread running its items and the heartbeat.

    `at` is the index of the item that may be running: every item before it is finished. The
    thread running items writes it before it checks for a stop, and both before the item starts.
    """

    __slots__ = ("ack", "at", "lease", "report", "stop_reported")

    def __init__(self, lease: Lease, report: Callable[[int], bool]) -> None:
        self.lease = lease
        self.report = report  # tells Redis the position synchronously; False: the lease was lost
        self.ack = Ack(lease_id=lease.lease_id)
        self.at = 0
        self.stop_reported = False


class Heartbeat:
    """Extends the lease this worker holds every third of its length, from a thread of its own,
    reporting the worker's position with it; hands back what will not start once a stop comes.

    The worker's thread may be blocked for hours in a program or a handler; this thread keeps the
    lease alive meanwhile. It uses its own connection from the client's pool.
    """

    def __init__(
        self,
        queue: RedisQueue,
        settings: FineSettings,
        stop: StopRequest,
        enforce_grace: bool,
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.stop = stop
        self.enforce_grace = enforce_grace  # a handler cannot be stopped: end the process instead
        self._tracker: Tracker | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def hold(self, tracker: Tracker | None) -> None:
        """The lease now held (None: none); a plain assignment, read atomically by the beat."""
        self._tracker = tracker

    def _beat(self) -> None:
        period = self.settings.lease_seconds / 3
        next_beat = time.monotonic() + period
        while not self._stopped.wait(min(STOP_CHECK_SECONDS, period)):
            tracker = self._tracker
            if tracker is None:
                continue
            try:
                if self.stop.requested:
                    self._on_stop(tracker)
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + period
                    self._report(tracker)
            except Exception as error:  # noqa: BLE001 - a missed beat must not kill the worker
                log.warning("could not extend lease %s: %s", tracker.lease.lease_id, error)

    def _report(self, tracker: Tracker, stopping: bool = False) -> None:
        lease_id = tracker.lease.lease_id
        if (
            not self.queue.report(lease_id, tracker.at, self.settings.lease_seconds, stopping)
            and self._tracker is tracker
        ):
            log.warning(
                "lease %s was lost (it expired before it could be extended): its items may run twice",
                lease_id,
            )

    def _on_stop(self, tracker: Tracker) -> None:
        """Hand back the items that will not start; past the grace period, a handler's item too."""
        if not tracker.stop_reported:
            tracker.stop_reported = True
            if tracker.at < len(tracker.lease.items) - 1:
                self._report(tracker, stopping=True)
        if not self.enforce_grace or time.monotonic() < self.stop.raised_at + self.settings.grace_seconds:
            return
        at, ack = tracker.at, tracker.ack
        failures = {index: error for index, error in dict(ack.failures).items() if index < at}
        self.queue.lease(
            Ack(lease_id=ack.lease_id, processed=at, failures=failures),
            0,
            self.settings.lease_seconds,
            self.settings.max_attempts,
        )
        log.warning(
            "the handler outlived the grace period after %s; its item went back to the queue: %s",
            self.stop.signal_name,
            preview(tracker.lease.items[at]),
        )
        sys.stderr.flush()
        os._exit(ExitCode.TERMINATED)


class BatchProcessor(abc.ABC):
    """Runs the items of one lease, stopping early on a stop request."""

    def __init__(self, stop: StopRequest, progress_seconds: float) -> None:
        self.stop = stop
        self.progress_seconds = progress_seconds
        self.processed_total = 0
        self.failed_total = 0
        self._started = time.monotonic()
        self._last_progress = self._started

    @abc.abstractmethod
    def next_lease(self, batch_size: int) -> tuple[int, int]:
        """The size of the next lease to ask for and its stride (items started per report)."""

    @abc.abstractmethod
    def process(self, lease: Lease, tracker: Tracker) -> Ack:
        """Run the lease's items in order; the Ack says how many ran and which failed."""

    def _count(self, ack: Ack) -> Ack:
        self.processed_total += ack.processed
        self.failed_total += len(ack.failures)
        return ack


def _lost_lease(lease: Lease) -> None:
    log.warning(
        "lease %s was lost before its next item could start: its items will run elsewhere", lease.lease_id
    )


class CommandProcessor(BatchProcessor):
    """One program run per item, with a log line per item."""

    def __init__(self, runner: CommandRunner, stop: StopRequest, progress_seconds: float) -> None:
        super().__init__(stop, progress_seconds)
        self.runner = runner

    def next_lease(self, batch_size: int) -> tuple[int, int]:
        return batch_size, 1  # a round trip per item is nothing next to starting a program

    def process(self, lease: Lease, tracker: Tracker) -> Ack:
        ack = tracker.ack
        for index, (item, attempt) in enumerate(zip(lease.items, lease.attempts, strict=True)):
            tracker.at = index
            if self.stop.requested:
                break
            if index and not tracker.report(index):
                _lost_lease(lease)
                break
            started = time.monotonic()
            outcome = self.runner.run(item)
            if outcome.interrupted:
                break
            ack.processed = index + 1
            seconds = time.monotonic() - started
            if outcome.ok:
                log.info(
                    "item done: %s (%.2f s)",
                    preview(item),
                    seconds,
                    extra={"item": preview(item), "attempt": attempt, "seconds": round(seconds, 3)},
                )
            else:
                ack.failures[index] = outcome.error
                log.warning(
                    "item failed (attempt %d): %s: %s",
                    attempt,
                    preview(item),
                    outcome.error,
                    extra={"item": preview(item), "attempt": attempt, "error": outcome.error},
                )
        return self._count(ack)


class HandlerProcessor(BatchProcessor):
    """An in-process function per item; a progress line every few seconds instead of one per item."""

    def __init__(self, handler: Handler, stop: StopRequest, progress_seconds: float) -> None:
        super().__init__(stop, progress_seconds)
        self.handler = handler
        self.seconds_per_item: float | None = None  # measured over the last lease

    def next_lease(self, batch_size: int) -> tuple[int, int]:
        """One item first, to time the handler; then a stride that reports about once per
        POSITION_REPORT_SECONDS of work (none at all for handlers fast enough)."""
        if self.seconds_per_item is None:
            return 1, 1
        stride = math.ceil(POSITION_REPORT_SECONDS / max(self.seconds_per_item, 1e-9))
        return batch_size, min(stride, batch_size)

    def process(self, lease: Lease, tracker: Tracker) -> Ack:
        ack = tracker.ack
        handler, failures, stop = self.handler, ack.failures, self.stop
        debug = log.isEnabledFor(logging.DEBUG)
        stride = report_at = lease.stride
        started = time.monotonic()
        for index, item in enumerate(lease.items):
            tracker.at = index
            if stop.requested:
                break
            if index >= report_at:
                if not tracker.report(index):
                    _lost_lease(lease)
                    break
                report_at = index + stride
            try:
                handler(item)
            except BaseException as error:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... too
                # Whatever the handler raises is this item's failure, SystemExit included: the
                # worker goes on with the batch. Signals never raise here (StopRequest handles them).
                failures[index] = f"{type(error).__name__}: {error}".removesuffix(": ")
                log.warning(
                    "item failed (attempt %d): %s: %s", lease.attempts[index], preview(item), failures[index]
                )
            else:
                if debug:
                    log.debug("item done: %s", preview(item))
            ack.processed = index + 1
        if ack.processed:
            self.seconds_per_item = (time.monotonic() - started) / ack.processed
        self._count(ack)
        self._maybe_report()
        return ack

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= self.progress_seconds:
            self._last_progress = now
            rate = self.processed_total / max(now - self._started, 1e-9)
            log.info(
                "progress: %d items processed, %d failed, %.0f items/s",
                self.processed_total,
                self.failed_total,
                rate,
                extra={
                    "processed": self.processed_total,
                    "failed": self.failed_total,
                    "items_per_second": round(rate),
                },
            )


class FineWorker:
    """Leases batches until the queue is finished, then says how it ended through the exit code."""

    def __init__(
        self,
        queue: RedisQueue,
        processor: BatchProcessor,
        settings: FineSettings,
        stop: StopRequest,
    ) -> None:
        self.queue = queue
        self.processor = processor
        self.settings = settings
        self.stop = stop
        self.seen_state: bytes | None = None  # the queue's end-of-input marker, once seen
        self.highest_lease = 0  # the highest lease id this worker was given
        self._changes: QueueChanges | None = None  # subscribed at its first wait, for the whole run

    def _check_state(self, view: QueueView, lease: Lease | None) -> None:
        """Fail when the queue has lost the state this worker saw: Redis restarted without
        persistence (or someone deleted the keys). A list that lost its keys looks like one filled
        by hand and emptied, which would be taken for a finished queue: the items that were in it
        would never run, and nothing would say so.

        The worker knows what it saw: an end-of-input marker (open or sealed; nothing ever removes
        one), and lease ids (the lease counter only rises while the queue keeps its state)."""
        lost = ""
        if view.state is not None:
            self.seen_state = view.state
        elif self.seen_state is not None:
            lost = f"it was {self.seen_state.decode()} and now has no end-of-input marker"
        if not lost and view.lease_counter < self.highest_lease:
            lost = (
                f"this worker held lease {self.highest_lease} and the queue's lease counter is now "
                f"{view.lease_counter}"
            )
        if lost:
            raise JobWorkerError(
                f"queue {self.queue.name!r} lost its state (Redis restarted without persistence, or "
                f"its keys deleted?): {lost}; the items it held are gone and may never have run, "
                "so this worker does not call the queue finished: seed it again"
            )
        if lease is not None:
            self.highest_lease = max(self.highest_lease, lease.lease_id)

    def run(self) -> ExitCode:
        try:
            return self._run()
        finally:
            if self._changes is not None:
                self._changes.close()

    def _run(self) -> ExitCode:
        settings, queue = self.settings, self.queue
        ack: Ack | None = None
        idle_since: float | None = None
        poll = POLL_MIN_SECONDS
        enforce_grace = isinstance(self.processor, HandlerProcessor)
        with Heartbeat(queue, settings, self.stop, enforce_grace) as heartbeat:
            while True:
                stopping = self.stop.requested
                heartbeat.hold(None)  # before the acknowledgement, so that no beat outlives the lease
                batch, stride = self.processor.next_lease(settings.batch_size)
                lease, view, acked = queue.lease(
                    ack, 0 if stopping else batch, settings.lease_seconds, settings.max_attempts, stride
                )
                self._check_state(view, lease)
                if not acked:
                    log.warning(
                        "lease %s had expired before its items were acknowledged: they will run again",
                        ack.lease_id if ack else None,
                    )
                ack = None
                if stopping:
                    log.info(
                        "stopping on %s: unfinished items were handed back to the queue",
                        self.stop.signal_name,
                    )
                    return ExitCode.TERMINATED
                if lease is not None:
                    tracker = Tracker(lease, self._reporter(lease.lease_id))
                    heartbeat.hold(tracker)
                    ack = self.processor.process(lease, tracker)
                    idle_since, poll = None, POLL_MIN_SECONDS
                    continue
                is_open = self._is_open(view)
                verdict = None if is_open else self._when_idle(view)
                if verdict is not None:
                    return verdict
                now = time.monotonic()
                if view.in_flight or not is_open:
                    idle_since = None  # others are working: their leases may still come back
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= settings.wait_seconds:
                    log.error(
                        "queue %r is open but no work came for %g s: is the producer running? "
                        "(seal the queue with `jobworker seal` when all items are in)",
                        self.queue.name,
                        settings.wait_seconds,
                    )
                    return ExitCode.NO_WORK
                delay = poll
                if view.next_expiry_seconds is not None and not view.pending:
                    delay = min(max(view.next_expiry_seconds, POLL_MIN_SECONDS), POLL_MAX_SECONDS)
                self._wait_for_change(delay)
                poll = min(poll * 2, POLL_MAX_SECONDS)

    def _wait_for_change(self, seconds: float) -> None:
        """Wait until the queue changes (a lease ended, items came back) or `seconds` passed.

        Waking at the change rather than at the next poll is what keeps workers from idling at the
        end of a Job: each one learns that the last lease was acknowledged at once.
        """
        if self._changes is None:
            self._changes = self.queue.changes()
        self._changes.wait(seconds, self.stop.sleep)

    def _reporter(self, lease_id: int) -> Callable[[int], bool]:
        queue, lease_seconds = self.queue, self.settings.lease_seconds
        return lambda position: queue.report(lease_id, position, lease_seconds)

    def _is_open(self, view: QueueView) -> bool:
        """Whether a producer may still push: marked open, or unmarked with --wait-for-seal."""
        return view.state == STATE_OPEN or (view.state is None and self.settings.wait_for_seal)

    def _when_idle(self, view: QueueView) -> ExitCode | None:
        """The exit code when the queue is finished, None when there may be more work."""
        if view.pending or view.in_flight:
            return None
        processor = self.processor
        how = "sealed" if view.state == STATE_SEALED else "empty (no end-of-input marker: filled by hand)"
        if view.failed:
            log.error(
                "queue %r is finished with %d failed items (this worker: %d processed, %d failed); "
                "see `jobworker status`, retry with `jobworker requeue-failed`",
                self.queue.name,
                view.failed,
                processor.processed_total,
                processor.failed_total,
            )
            return ExitCode.ITEMS_FAILED
        log.info(
            "queue %r is %s and finished: this worker processed %d items, %d failed attempts",
            self.queue.name,
            how,
            processor.processed_total,
            processor.failed_total,
        )
        return ExitCode.OK
