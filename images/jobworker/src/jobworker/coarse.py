"""The coarse-grained work-queue worker: one RabbitMQ message per pod, or many with --drain.

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

Heartbeats: pika's BlockingConnection answers the broker's heartbeats only while one of its
methods runs, and it is not thread-safe. So the program runs in a thread of its own while the main
thread keeps calling process_data_events, and every AMQP call (ack included) is made from the main
thread after the program ended. A program may run for hours this way.

Delivery acknowledgement timeout: the broker gives up on a delivery that stays unacknowledged for
`consumer_timeout` (30 minutes by default). RabbitMQ up to 4.2 does so on every queue and closes
the channel; 4.3 and later do so on quorum queues only (classic queues' deliveries never time out)
and cancel the consumer instead, which a naive pika consumer does not even notice, putting the
message back at once. Both are caught while pumping and treated as a failure of this run, never as
success: the program is stopped, nothing is acknowledged, and the worker exits 1 (the message is
back in the queue). Raise the limit for long items: `--consumer-timeout` (the consumer argument
x-consumer-timeout) or `jobworker seed --consumer-timeout` (the queue argument) on RabbitMQ
3.11.15+, or the server's consumer_timeout. The worker leaves the argument out where it would do
nothing: on older brokers, which ignore it, and on 4.3+ classic queues, which refuse it (the
queue's type shows only in that refusal, so the worker then consumes again without it).

A lost connection while no message is held is retried (the broker may be restarting); with a
message held, the message is already back in the queue, so the program is stopped and the worker
exits 1 (with --drain it reconnects and goes on instead).

Prefetch (--drain --prefetch N) and lost workers: a worker killed outright (SIGKILL, OOM, node
loss) records nothing, and the broker takes back every message it held. RabbitMQ counts each of
those returns in a quorum queue's x-delivery-count (3.10 and 4.3 alike, tested), and from 4.0 on
dead-letters a message returned more than 20 times: the prefetched messages that never started
would be charged like the one that killed the worker, and a crash loop would take them all to
the dead-letter queue. So a worker holds nothing else while it runs a message that a lost worker
held before (redelivered: the likely culprit of a crash loop). Each connection starts at prefetch
1 and widens to N once a message that no lost worker held has run; a redelivered message that
comes at prefetch N is handed back with everything held (basic.nack, requeue, which RabbitMQ 4.3
does not count; earlier versions count it once) and the worker consumes again at prefetch 1, so
that it comes back alone. A message that kills every worker running it is then the only one
counted after its first crash, when the messages prefetched with it are counted once. Every
message runs while the consumer it was delivered to is active: the consumer argument
x-consumer-timeout, where it is sent, keeps applying to it.
"""

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pika
from pika import exceptions
from pika.adapters.blocking_connection import BlockingChannel

from jobworker.amqpqueue import (
    NOT_FOUND,
    Broker,
    PublishFailed,
    QueueCounts,
    attempts_of,
    connect,
    consumer_timeout_argument,
    dead_letter,
    describe,
    log_classic_untimed,
    refuses_consumer_timeout,
    retry_later,
    server_version,
)
from jobworker.constants import AmqpNames, ExitCode
from jobworker.errors import JobWorkerError
from jobworker.logs import preview
from jobworker.runner import CommandRunner, Outcome
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)

PUMP_SECONDS = 0.2  # how often the main thread services the connection while a program runs
MAX_LOSSES_WITHOUT_PROGRESS = 3  # --drain: reconnections allowed while no item gets done


@dataclass(frozen=True)
class CoarseSettings:
    max_attempts: int
    wait_seconds: float  # for the first message
    drain: bool
    prefetch: int
    idle_seconds: float  # --drain: the queue counts as drained after this long without a message
    consumer_timeout: float | None  # sent as the consumer argument x-consumer-timeout where it works


class BrokerLost(Exception):
    """The connection or channel is gone (or the broker cancelled us): nothing held can be settled.

    Whatever the channel held unacknowledged is back in the queue, by the broker's own doing.
    """


@dataclass(frozen=True)
class Delivery:
    tag: int
    body: bytes
    properties: pika.BasicProperties
    redelivered: bool

    @property
    def attempt(self) -> int:
        """This run's number: 1 + the failed runs the message records."""
        return attempts_of(self.properties) + 1


class Consumer:
    """One connection and one channel consuming the work queue, used from the main thread only."""

    def __init__(self, broker: Broker, names: AmqpNames, settings: CoarseSettings, stop: StopRequest) -> None:
        self.broker = broker
        self.names = names
        self.stop = stop
        self.deliveries: collections.deque[Delivery] = collections.deque()
        self.cancelled_by_broker = False
        self._ack_tag = 0  # the highest delivery acknowledged later, with multiple=True
        self._ack_count = 0
        self.target_prefetch = settings.prefetch
        self.prefetch = 1  # until a message that no lost worker held comes (see the module docstring)
        self.consuming = False
        self.connection = connect(broker, stop)
        self.version = server_version(self.connection)
        try:
            self.channel = self._open_channel(self.prefetch)
            arguments = consumer_timeout_argument(
                settings.consumer_timeout, self.version, names.work, classic=None, kind="consumer argument"
            )
            try:
                self.consumer_tag = self.channel.basic_consume(
                    names.work, self._on_message, auto_ack=False, arguments=arguments or None
                )
            except exceptions.ChannelClosedByBroker as error:
                if not (arguments and refuses_consumer_timeout(error)):
                    raise
                log_classic_untimed(self.version, names.work, "consumer argument")
                arguments = {}
                self.channel = self._open_channel(self.prefetch)
                self.consumer_tag = self.channel.basic_consume(names.work, self._on_message, auto_ack=False)
            self.consuming = True
            self._arguments = arguments
            self.timeout_argument_sent = bool(arguments)
        except exceptions.ChannelClosedByBroker as error:
            self.close()
            raise JobWorkerError(
                f"RabbitMQ refused to let us consume {names.work!r}: {describe(error)}"
            ) from None
        except (exceptions.AMQPConnectionError, OSError) as error:
            self.close()
            raise JobWorkerError(
                f"lost the connection to RabbitMQ at {broker.location}: {describe(error)}"
            ) from None
        except BaseException:
            self.close()
            raise

    def _open_channel(self, prefetch: int) -> BlockingChannel:
        """A channel in confirm mode with the prefetch set, after checking that the queue exists."""
        channel = self.connection.channel()
        try:
            channel.queue_declare(self.names.work, passive=True)
        except exceptions.ChannelClosedByBroker as error:
            if error.reply_code != NOT_FOUND:
                raise
            raise JobWorkerError(
                f"queue {self.names.work!r} does not exist on RabbitMQ at {self.broker.location}: "
                "create it with `jobworker seed --amqp-url ...` (or declare it durable)"
            ) from None
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=prefetch)
        channel.add_on_cancel_callback(self._on_cancel)
        return channel

    def _on_message(
        self, _channel: object, method: pika.spec.Basic.Deliver, properties: pika.BasicProperties, body: bytes
    ) -> None:
        self.deliveries.append(Delivery(method.delivery_tag, body, properties, method.redelivered))

    def _on_cancel(self, _frame: object) -> None:
        self.cancelled_by_broker = True

    # --- servicing the connection ---------------------------------------------------------------
    def pump(self, seconds: float) -> None:
        """Answer heartbeats and take in deliveries for up to `seconds`; BrokerLost if cut off."""
        try:
            self.connection.process_data_events(time_limit=seconds)
        except (exceptions.AMQPConnectionError, OSError) as error:
            raise BrokerLost(
                f"lost the connection to RabbitMQ at {self.broker.location}: {describe(error)}"
            ) from None
        except exceptions.AMQPChannelError as error:
            raise BrokerLost(self._channel_gone(error)) from None
        self._check_channel()

    def wake(self) -> None:
        """Make a pump in progress return at once; the one call allowed from another thread.

        The program's thread calls it when the program ends, so that settling the message does
        not wait for the pump's time limit.
        """
        with contextlib.suppress(exceptions.AMQPError):
            self.connection.add_callback_threadsafe(_nothing)

    def _check_channel(self) -> None:
        if self.channel.is_closed:
            # pika keeps the broker's reason on the channel without raising it from
            # process_data_events: this is how a delivery acknowledgement timeout shows up.
            raise BrokerLost(self._channel_gone(getattr(self.channel, "_closing_reason", None)))
        if self.cancelled_by_broker:
            raise BrokerLost(
                f"RabbitMQ cancelled our consumer of {self.names.work!r}: the queue was deleted, or "
                "(RabbitMQ 4.3+, a quorum queue) the delivery acknowledgement timeout passed "
                "(see --consumer-timeout)"
            )

    def _channel_gone(self, reason: BaseException | None) -> str:
        text = describe(reason) if reason is not None else "closed"
        if "acknowledgement" in text and "timed out" in text:
            return (
                f"RabbitMQ gave up on the delivery: {text} (raise the timeout for long items: "
                "--consumer-timeout, `jobworker seed --consumer-timeout`, or the server's consumer_timeout)"
            )
        return f"RabbitMQ closed the channel: {text}"

    def _guard(self, what: str, function: Callable, *args: object, **kwargs: object):
        try:
            return function(*args, **kwargs)
        except (exceptions.AMQPConnectionError, OSError) as error:
            raise BrokerLost(
                f"lost the connection to RabbitMQ at {self.broker.location} while trying to {what}: "
                f"{describe(error)}"
            ) from None
        except exceptions.AMQPChannelError as error:
            raise BrokerLost(f"could not {what}: {self._channel_gone(error)}") from None

    def next(self, timeout: float) -> Delivery | None:
        """The next delivery, or None after `timeout` seconds without one or on a stop request."""
        if not self.deliveries:
            self.flush_acks()  # with every prefetched message done, the broker waits for these
            if not self.consuming:
                self._consume(self.prefetch)
        deadline = time.monotonic() + timeout
        while not self.deliveries:
            remaining = deadline - time.monotonic()
            if self.stop.requested or remaining <= 0:
                return None
            self.pump(min(PUMP_SECONDS, remaining))
        return self.deliveries.popleft()

    # --- prefetch ---------------------------------------------------------------------------------
    def hand_back_to_run_alone(self, delivery: Delivery) -> bool:
        """--prefetch above 1: a redelivered message that came while others may be held is handed
        back with all of them, and the consumer starts again at prefetch 1, so that it comes back
        alone (see the module docstring). True when it was handed back instead of run."""
        if self.target_prefetch <= 1 or self.prefetch <= 1 or not delivery.redelivered:
            return False
        self.flush_acks()
        if self.consuming and not self.cancelled_by_broker:
            self._guard("cancel the consumer", self.channel.basic_cancel, self.consumer_tag)
        self.consuming = False
        self._guard("hand messages back", self.channel.basic_nack, 0, multiple=True, requeue=True)
        log.info(
            "%s was redelivered (a worker holding it was lost): it and the %d messages prefetched with "
            "it went back to the queue, to run it with nothing else held",
            preview(delivery.body),
            len(self.deliveries),
        )
        self.deliveries.clear()
        self.prefetch = 1
        return True

    def before_settling(self, delivery: Delivery) -> None:
        """--prefetch above 1, at prefetch 1: once a message that no lost worker held has run,
        widen the prefetch. The consumer is cancelled now, while that message is the only one
        held and still unsettled, so that nothing is delivered to it meanwhile; next() consumes
        again at the full prefetch."""
        if self.prefetch < self.target_prefetch and self.consuming and not delivery.redelivered:
            self._guard("cancel the consumer", self.channel.basic_cancel, self.consumer_tag)
            self.consuming = False
            self.prefetch = self.target_prefetch

    def _consume(self, prefetch: int) -> None:
        """Consume (again) at this prefetch; a prefetch applies to consumers started after it is set."""
        if self.consuming and not self.cancelled_by_broker:
            self._guard("cancel the consumer", self.channel.basic_cancel, self.consumer_tag)
        self.consuming = False
        self._guard("set the prefetch", self.channel.basic_qos, prefetch_count=prefetch)
        self.consumer_tag = self._guard(
            "consume",
            self.channel.basic_consume,
            self.names.work,
            self._on_message,
            auto_ack=False,
            arguments=self._arguments or None,
        )
        self.consuming = True
        self.prefetch = prefetch

    # --- settling -------------------------------------------------------------------------------
    def ack_now(self, delivery: Delivery) -> None:
        self.flush_acks()
        self._guard("acknowledge the message", self.channel.basic_ack, delivery.tag)

    def ack_later(self, delivery: Delivery) -> None:
        """--drain: acknowledge in batches (multiple=True); items run in delivery order, so a batch
        never covers a message that did not run."""
        self._ack_tag = delivery.tag
        self._ack_count += 1
        if self._ack_count >= max(self.prefetch // 2, 1) or not self.deliveries:
            self.flush_acks()

    def flush_acks(self) -> None:
        if self._ack_count:
            tag, self._ack_tag, self._ack_count = self._ack_tag, 0, 0
            self._guard("acknowledge messages", self.channel.basic_ack, tag, multiple=True)

    def hand_back_all(self) -> None:
        """Return every message held and not acknowledged to the queue (basic.nack, requeue).

        The consumer is cancelled first: otherwise the broker delivers a message straight back to
        us, and our disconnection returns it once more, which counts as a failed delivery of a
        quorum queue (x-delivery-count, the delivery limit) where the nack does not, from 4.3.
        """
        self.flush_acks()
        self.deliveries.clear()
        if self.consuming and not self.cancelled_by_broker:
            self._guard("cancel the consumer", self.channel.basic_cancel, self.consumer_tag)
        self.consuming = False
        self._guard("hand messages back", self.channel.basic_nack, 0, multiple=True, requeue=True)

    def stop_consuming(self) -> None:
        """Cancel the consumer, so that nothing more is delivered after the coming acknowledgement."""
        self._guard("cancel the consumer", self.channel.basic_cancel, self.consumer_tag)
        self.consuming = False
        self._check_channel()

    def confirm(self) -> QueueCounts:
        """A round trip on the channel: it fails if the broker rejected anything sent before it
        (an acknowledgement of a delivery it had already taken back, say)."""
        ok = self._guard(
            "confirm the acknowledgement", self.channel.queue_declare, self.names.work, passive=True
        )
        self._check_channel()
        return QueueCounts(ready=ok.method.message_count, consumers=ok.method.consumer_count)

    def failed_count(self) -> int | None:
        """Messages in the dead-letter queue (None: there is none), looked up on a channel of its own."""
        channel = self._guard("open a channel", self.connection.channel)
        try:
            return channel.queue_declare(self.names.failed, passive=True).method.message_count
        except exceptions.ChannelClosedByBroker:
            return None
        finally:
            with contextlib.suppress(exceptions.AMQPError):
                if channel.is_open:
                    channel.close()

    def close(self) -> None:
        with contextlib.suppress(exceptions.AMQPError, OSError):
            if self.connection.is_open:
                self.connection.close()


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
            consumer = Consumer(self.broker, self.names, self.settings, self.stop)
            if self.settings.consumer_timeout and not consumer.timeout_argument_sent:
                # One line said why it was left out; a reconnection goes without it, silently.
                self.settings = replace(self.settings, consumer_timeout=None)
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
                if delivery is not None:
                    consumer.deliveries.appendleft(delivery)
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
                dead_letter(
                    consumer.channel,
                    self.names,
                    delivery.body,
                    delivery.properties,
                    attempts=attempt,
                    error=error,
                )
            else:
                retry_later(
                    consumer.channel,
                    self.names.work,
                    delivery.body,
                    delivery.properties,
                    attempts=attempt,
                    error=error,
                )
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

        def work() -> None:
            try:
                result.append(runner.run(delivery.body))
            except BaseException as error:  # noqa: BLE001 - re-raised in the main thread below
                crashed.append(error)
            finally:
                consumer.wake()

        thread = threading.Thread(target=work, name="program", daemon=True)
        thread.start()
        lost: BrokerLost | None = None
        while thread.is_alive():
            if self.stop.requested and not item_stop.requested:
                item_stop.request(self.stop.signal_name)
            if lost is None:
                try:
                    consumer.pump(PUMP_SECONDS)
                except BrokerLost as error:
                    lost = error
                    item_stop.request("the broker connection was lost")
            else:
                thread.join(PUMP_SECONDS)
        thread.join()
        if crashed:
            raise crashed[0]
        return result[0], lost


def _nothing() -> None:
    """A callback that only wakes the connection's thread up."""
