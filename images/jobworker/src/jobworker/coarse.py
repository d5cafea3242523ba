"""The coarse-grained work-queue worker: one RabbitMQ message per pod, or many with --drain.

This module is the policy for one message; the consumer that holds it on the wire (heartbeats,
prefetch, the delivery acknowledgement timeout) is amqpconsumer.py, as fine.py's is redisqueue.py.

One message: connect, check that the queue exists (a passive declare: the worker declares
nothing), consume with prefetch 1 and manual acknowledgement, run the program on the message,
and settle it:

- exit 0 of the program: cancel the consumer, acknowledge, check with a round trip that the broker
  took the acknowledgement, exit 0. Only then does the pod count as a completion.
- a failure: publish the message again at the tail of the queue with x-jobworker-attempts + 1
  (publisher confirm), acknowledge the original, exit ITEM_REQUEUED (5) so that the Job replaces
  the pod; on the last attempt publish it to the dead-letter exchange Q.failed with its error
  instead and exit 0, so that completions still match the number of items.
- SIGTERM: the program may finish within --grace-seconds (then it is acknowledged as usual);
  otherwise it is stopped and the message is handed back (basic.nack, requeue): exit 143.

The program runs in a thread of its own while the main thread pumps the connection (see
amqpconsumer.py for why). A broker that gives up on the delivery (the delivery acknowledgement
timeout, see --consumer-timeout) is a failure of this run, never a success: the program is
stopped, nothing is acknowledged, and the worker exits 1 (the message is back in the queue).

A lost connection while no message is held is retried (the broker may be restarting); with a
message held, the message is already back in the queue, so the program is stopped and the worker
exits 1 (with --drain it reconnects and goes on instead).
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from jobworker.amqpconsumer import PUMP_SECONDS, BrokerLost, Consumer, Delivery
from jobworker.amqpqueue import Broker, PublishFailed
from jobworker.constants import AmqpNames, ExitCode
from jobworker.errors import JobWorkerError
from jobworker.logs import preview
from jobworker.runner import CommandRunner, Outcome
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)

MAX_LOSSES_WITHOUT_PROGRESS = 3  # --drain: reconnections allowed while no item gets done


class CoarseSettings(NamedTuple):
    max_attempts: int
    wait_seconds: float  # for the first message
    drain: bool
    prefetch: int
    idle_seconds: float  # --drain: the queue counts as drained after this long without a message
    consumer_timeout: float | None  # sent as the consumer argument x-consumer-timeout where it works


class CoarseWorker:
    """Takes one message (or, with --drain, messages until the queue stays empty) and settles it."""

    def __init__(
        self,
        broker: Broker,
        names: AmqpNames,
        runner_for: Callable[[StopRequest], CommandRunner],
        settings: CoarseSettings,
        stop: StopRequest,
    ) -> None:
        self.broker = broker
        self.names = names
        self.runner_for = runner_for
        self.settings = settings
        self.stop = stop
        self.taken = 0  # messages this worker ran
        self.done = 0
        self.failed_runs = 0
        self.dead_lettered = 0

    def run(self) -> ExitCode:
        first_deadline = time.monotonic() + self.settings.wait_seconds
        losses, done_before = 0, 0
        while True:
            consumer = Consumer(
                self.broker, self.names, self.settings.prefetch, self.settings.consumer_timeout, self.stop
            )
            if self.settings.consumer_timeout and not consumer.timeout_argument_sent:
                # One line said why it was left out; a reconnection goes without it, silently.
                self.settings = self.settings._replace(consumer_timeout=None)
            if not losses:
                log.info(
                    "worker started on queue %r at %s (%s, %d attempts)",
                    self.names.work,
                    self.broker.location,
                    f"draining, prefetch {self.settings.prefetch}" if self.settings.drain else "one message",
                    self.settings.max_attempts,
                )
            try:
                return self._consume(consumer, first_deadline)
            except BrokerLost as lost:
                if self.stop.requested:
                    log.info(
                        "stopping on %s; the broker had already taken back what we held",
                        self.stop.signal_name,
                    )
                    return ExitCode.TERMINATED
                losses = losses + 1 if self.done == done_before else 1
                done_before = self.done
                if losses > MAX_LOSSES_WITHOUT_PROGRESS:
                    raise JobWorkerError(
                        f"{lost}; giving up after {losses} lost connections in a row"
                    ) from None
                log.warning("%s; reconnecting", lost)
            finally:
                consumer.close()

    def _consume(self, consumer: Consumer, first_deadline: float) -> ExitCode:
        settings = self.settings
        while True:
            timeout = settings.idle_seconds if self.taken else first_deadline - time.monotonic()
            delivery = consumer.next(max(timeout, 0.0))
            if self.stop.requested:
                consumer.hand_back_all()
                log.info("stopping on %s: messages not yet run went back to the queue", self.stop.signal_name)
                return ExitCode.TERMINATED
            if delivery is None:
                return self._when_idle(consumer)
            if consumer.hand_back_to_run_alone(delivery):
                continue
            self.taken += 1
            verdict = self._process(consumer, delivery)
            if verdict is not None:
                return verdict

    def _when_idle(self, consumer: Consumer) -> ExitCode:
        settings = self.settings
        if not self.taken:
            log.error(
                "no message arrived on queue %r within %g s: the queue is empty (more pods than items?)",
                self.names.work,
                settings.wait_seconds,
            )
            return ExitCode.NO_WORK
        consumer.confirm()
        failed = consumer.failed_count() or 0
        summary = (
            f"this worker ran {self.taken} items: {self.done} done, {self.failed_runs} failed runs, "
            f"{self.dead_lettered} moved to {self.names.failed}"
        )
        if failed:
            log.error(
                "queue %r is drained with %d items in %r (%s); see `jobworker status`, retry with "
                "`jobworker requeue-failed`",
                self.names.work,
                failed,
                self.names.failed,
                summary,
            )
            return ExitCode.ITEMS_FAILED
        log.info(
            "queue %r is drained: no message for %g s; %s", self.names.work, settings.idle_seconds, summary
        )
        return ExitCode.OK

    def _process(self, consumer: Consumer, delivery: Delivery) -> ExitCode | None:
        """Run one message and settle it; an exit code ends the worker, None goes on (--drain)."""
        drain = self.settings.drain
        started = time.monotonic()
        outcome, lost = self._run(consumer, delivery)
        seconds = time.monotonic() - started
        fields = {
            "item": preview(delivery.body),
            "attempt": delivery.attempt,
            "redelivered": delivery.redelivered,  # an earlier worker held it and did not settle it
            "seconds": round(seconds, 3),
        }
        if lost is not None:
            log.error("%s; the message went back to the queue and will run again", lost, extra=fields)
            if drain:
                raise lost
            return ExitCode.ERROR
        if outcome.interrupted:
            consumer.hand_back_all()
            log.info(
                "stopping on %s: the program was stopped and the message went back to the queue",
                self.stop.signal_name,
                extra=fields,
            )
            return ExitCode.TERMINATED
        if outcome.ok:
            return self._succeeded(consumer, delivery, seconds, fields)
        return self._failed(consumer, delivery, outcome.error, fields)

    def _succeeded(
        self, consumer: Consumer, delivery: Delivery, seconds: float, fields: dict
    ) -> ExitCode | None:
        try:
            if self.settings.drain:
                consumer.before_settling(delivery)
                consumer.ack_later(delivery)
            else:
                consumer.stop_consuming()
                consumer.ack_now(delivery)
                consumer.confirm()
        except BrokerLost as lost:
            log.error("the item ran but %s: it went back to the queue and will run again", lost, extra=fields)
            if self.settings.drain:
                raise
            return ExitCode.ERROR
        self.done += 1
        log.info("item done: %s (%.2f s)", preview(delivery.body), seconds, extra=fields)
        return None if self.settings.drain else ExitCode.OK

    def _failed(self, consumer: Consumer, delivery: Delivery, error: str, fields: dict) -> ExitCode | None:
        """Record the failed run in the message: retry at the tail, or dead-letter on the last attempt."""
        self.failed_runs += 1
        attempt, limit = delivery.attempt, self.settings.max_attempts
        log.warning(
            "item failed (attempt %d of %d): %s: %s",
            attempt,
            limit,
            preview(delivery.body),
            error,
            extra={**fields, "error": error},
        )
        last = attempt >= limit
        try:
            if self.settings.drain:
                consumer.before_settling(delivery)
            consumer.flush_acks()
            if last:
                consumer.dead_letter(delivery, attempt, error)
            else:
                consumer.retry_later(delivery, attempt, error)
            if not self.settings.drain:
                consumer.stop_consuming()
            consumer.ack_now(delivery)
            if not self.settings.drain:
                consumer.confirm()
        except PublishFailed as failure:
            where = (
                f"the dead-letter exchange {self.names.failed!r}" if last else f"queue {self.names.work!r}"
            )
            hint = " (declare it with `jobworker seed`)" if last else ""
            raise JobWorkerError(
                f"cannot record the failure of item {preview(delivery.body)!r} in {where}: {failure}{hint}; "
                f"the message stays in queue {self.names.work!r}"
            ) from None
        except BrokerLost as lost:
            log.error(
                "%s while recording the failure; the message went back to the queue", lost, extra=fields
            )
            if self.settings.drain:
                raise
            return ExitCode.ERROR
        if last:
            self.dead_lettered += 1
            log.error(
                "item moved to %r after %d failed attempts: %s",
                self.names.failed,
                attempt,
                preview(delivery.body),
                extra={**fields, "error": error},
            )
            return None if self.settings.drain else ExitCode.OK
        log.info(
            "item put back at the tail of queue %r for attempt %d", self.names.work, attempt + 1, extra=fields
        )
        return None if self.settings.drain else ExitCode.ITEM_REQUEUED

    def _run(self, consumer: Consumer, delivery: Delivery) -> tuple[Outcome, BrokerLost | None]:
        """Run the program in a thread while this thread keeps the connection alive.

        A SIGTERM, or losing the broker, raises this item's own stop request: the runner then lets
        the program finish within the grace period, or stops it.
        """
        item_stop = StopRequest()
        runner = self.runner_for(item_stop)
        result: list[Outcome] = []
        crashed: list[BaseException] = []
        # Set before the wake, and tested instead of thread.is_alive(): the thread outlives its
        # wake by a moment, and a pump started in that moment would wait out PUMP_SECONDS.
        ran = threading.Event()

        def work() -> None:
            try:
                result.append(runner.run(delivery.body))
            except BaseException as error:  # noqa: BLE001 - re-raised in the main thread below
                crashed.append(error)
            finally:
                ran.set()
                consumer.wake()

        thread = threading.Thread(target=work, name="program", daemon=True)
        thread.start()
        lost: BrokerLost | None = None
        while not ran.is_set():
            if self.stop.requested and not item_stop.requested:
                item_stop.request(self.stop.signal_name)
            if lost is None:
                try:
                    consumer.pump(PUMP_SECONDS)
                except BrokerLost as error:
                    lost = error
                    item_stop.request("the broker connection was lost")
            else:
                ran.wait(PUMP_SECONDS)
        thread.join()
        if crashed:
            raise crashed[0]
        return result[0], lost
