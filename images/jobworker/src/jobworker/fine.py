"""The fine-grained work-queue worker: many items per pod from a Redis list.

The loop: acknowledge the last batch and lease the next in one call; run each item (a program per
item, or an in-process handler); repeat until the queue is finished. A finished queue is empty
with nothing in flight, and, when a producer marked it, sealed. While a lease is held, a heartbeat
thread keeps it alive, so an item may run for hours; if the worker dies instead, the lease
expires and another worker takes the items over.
"""

import abc
import logging
import threading
import time
from dataclasses import dataclass

from jobworker.constants import (
    POLL_MAX_SECONDS,
    POLL_MIN_SECONDS,
    STATE_OPEN,
    STATE_SEALED,
    ExitCode,
)
from jobworker.handlers import Handler
from jobworker.logs import preview
from jobworker.redisqueue import Ack, Lease, QueueView, RedisQueue
from jobworker.runner import CommandRunner
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FineSettings:
    batch_size: int
    lease_seconds: float
    max_attempts: int
    wait_seconds: float  # give up after this long on an open queue that brings no work
    wait_for_seal: bool  # treat a queue with no end-of-input marker as open, not as filled by hand
    progress_seconds: float  # handler mode: a progress line this often


class Heartbeat:
    """Extends the lease this worker holds every third of its length, from a thread of its own.

    The worker's thread may be blocked for hours in a program; this thread keeps the lease
    alive meanwhile. It uses its own connection from the client's pool.
    """

    def __init__(self, queue: RedisQueue, lease_seconds: float) -> None:
        self.queue = queue
        self.lease_seconds = lease_seconds
        self._lease_id: int | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def hold(self, lease_id: int | None) -> None:
        with self._lock:
            self._lease_id = lease_id

    def _holds(self, lease_id: int) -> bool:
        """Still our lease? A lease acknowledged while a beat was under way is not lost."""
        with self._lock:
            return self._lease_id == lease_id

    def _beat(self) -> None:
        while not self._stopped.wait(self.lease_seconds / 3):
            with self._lock:
                lease_id = self._lease_id
            if lease_id is None:
                continue
            try:
                if not self.queue.extend(lease_id, self.lease_seconds) and self._holds(lease_id):
                    log.warning(
                        "lease %s was lost (it expired before it could be extended): its items may run twice",
                        lease_id,
                    )
            except Exception as error:  # noqa: BLE001 - a missed beat must not kill the worker
                log.warning("could not extend lease %s: %s", lease_id, error)


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
    def process(self, lease: Lease) -> Ack:
        """Run the lease's items in order; the Ack says how many ran and which failed."""

    def _count(self, ack: Ack) -> Ack:
        self.processed_total += ack.processed
        self.failed_total += len(ack.failures)
        return ack


class CommandProcessor(BatchProcessor):
    """One program run per item, with a log line per item."""

    def __init__(self, runner: CommandRunner, stop: StopRequest, progress_seconds: float) -> None:
        super().__init__(stop, progress_seconds)
        self.runner = runner

    def process(self, lease: Lease) -> Ack:
        ack = Ack(lease_id=lease.lease_id)
        for index, (item, attempt) in enumerate(zip(lease.items, lease.attempts, strict=True)):
            if self.stop.requested:
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

    def process(self, lease: Lease) -> Ack:
        ack = Ack(lease_id=lease.lease_id)
        handler, failures, debug = self.handler, ack.failures, log.isEnabledFor(logging.DEBUG)
        for index, item in enumerate(lease.items):
            if self.stop.requested:
                break
            try:
                handler(item)
            except Exception as error:  # noqa: BLE001 - any exception from user code fails the item
                failures[index] = f"{type(error).__name__}: {error}"
                log.warning(
                    "item failed (attempt %d): %s: %s", lease.attempts[index], preview(item), failures[index]
                )
            else:
                if debug:
                    log.debug("item done: %s", preview(item))
            ack.processed = index + 1
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

    def run(self) -> ExitCode:
        settings = self.settings
        ack: Ack | None = None
        idle_since: float | None = None
        poll = POLL_MIN_SECONDS
        with Heartbeat(self.queue, settings.lease_seconds) as heartbeat:
            while True:
                stopping = self.stop.requested
                heartbeat.hold(None)  # before the acknowledgement, so that no beat outlives the lease
                lease, view, acked = self.queue.lease(
                    ack, 0 if stopping else settings.batch_size, settings.lease_seconds, settings.max_attempts
                )
                if not acked:
                    log.warning(
                        "lease %s had expired before its items were acknowledged: they will run again",
                        ack.lease_id if ack else None,
                    )
                heartbeat.hold(lease.lease_id if lease else None)
                ack = None
                if stopping:
                    log.info(
                        "stopping on %s: unfinished items were handed back to the queue",
                        self.stop.signal_name,
                    )
                    return ExitCode.TERMINATED
                if lease is not None:
                    ack = self.processor.process(lease)
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
                self.stop.sleep(delay)
                poll = min(poll * 2, POLL_MAX_SECONDS)

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
