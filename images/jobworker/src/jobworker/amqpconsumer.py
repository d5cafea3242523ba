"""The RabbitMQ consumer: one connection and one channel that take in, hold and settle messages.

What the coarse worker (coarse.py) decides about a message is its policy; how a message is held on
the wire is here, next to the queue code (amqpqueue.py), as the Redis lease protocol lives in
redisqueue.py beside the policy of fine.py.

Heartbeats: pika's BlockingConnection answers the broker's heartbeats only while one of its
methods runs, and it is not thread-safe. So the program runs in a thread of its own while the main
thread keeps calling Consumer.pump, and every AMQP call (ack included) is made from the main
thread after the program ended; Consumer.wake is the one call allowed from another thread. A
program may run for hours this way.

Delivery acknowledgement timeout: the broker gives up on a delivery that stays unacknowledged for
`consumer_timeout` (30 minutes by default). RabbitMQ up to 4.2 does so on every queue and closes
the channel; 4.3 and later do so on quorum queues only (classic queues' deliveries never time out)
and cancel the consumer instead, which a naive pika consumer does not even notice, putting the
message back at once. Both are caught while pumping and raised as BrokerLost, never taken for
success. Raise the limit for long items: `--consumer-timeout` (the consumer argument
x-consumer-timeout) or `jobworker seed --consumer-timeout` (the queue argument) on RabbitMQ
3.11.15+, or the server's consumer_timeout. The consumer leaves the argument out where it would do
nothing: on older brokers, which ignore it, and on 4.3+ classic queues, which refuse it (the
queue's type shows only in that refusal, so the consumer then consumes again without it).

Prefetch (--drain --prefetch N) and lost workers: a worker killed outright (SIGKILL, OOM, node
loss) records nothing, and the broker takes back every message it held. RabbitMQ counts each of
those returns in a quorum queue's x-delivery-count (3.10 and 4.3 alike, tested), and from 4.0 on
dead-letters a message returned more than 20 times: the prefetched messages that never started
would be charged like the one that killed the worker, and a crash loop would take them all to
the dead-letter queue. So a worker holds nothing else while it runs a message that a lost worker
held before (redelivered: the likely culprit of a crash loop). Each connection starts at prefetch
1 and widens to N once a message that no lost worker held has run; a redelivered message that
comes at prefetch N is handed back with everything held (basic.nack, requeue, which RabbitMQ 4.3
does not count; earlier versions count it once) and the consumer consumes again at prefetch 1, so
that it comes back alone. A message that kills every worker running it is then the only one
counted after its first crash, when the messages prefetched with it are counted once. Every
message runs while the consumer it was delivered to is active: the consumer argument
x-consumer-timeout, where it is sent, keeps applying to it.
"""

import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import pika
from pika import exceptions
from pika.adapters.blocking_connection import BlockingChannel

from jobworker.amqpqueue import (
    NOT_FOUND,
    Broker,
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
from jobworker.constants import AmqpNames
from jobworker.errors import JobWorkerError
from jobworker.logs import preview
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)

PUMP_SECONDS = 0.2  # how often the main thread services the connection while a program runs


class BrokerLost(Exception):
    """The connection or channel is gone (or the broker cancelled us): nothing held can be settled.

    Whatever the channel held unacknowledged is back in the queue, by the broker's own doing.
    """


class Delivery(NamedTuple):
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

    def __init__(
        self,
        broker: Broker,
        names: AmqpNames,
        prefetch: int,
        consumer_timeout: float | None,
        stop: StopRequest,
    ) -> None:
        """Connect and consume at prefetch 1, widening to `prefetch` later (see the module docstring);
        `consumer_timeout` is sent as the consumer argument x-consumer-timeout where it works."""
        self.broker = broker
        self.names = names
        self.stop = stop
        self.deliveries: collections.deque[Delivery] = collections.deque()
        self.cancelled_by_broker = False
        self._ack_tag = 0  # the highest delivery acknowledged later, with multiple=True
        self._ack_count = 0
        self.target_prefetch = prefetch
        self.prefetch = 1  # until a message that no lost worker held comes (see the module docstring)
        self.consuming = False
        self.connection = connect(broker, stop)
        self.version = server_version(self.connection)
        try:
            self.channel = self._open_channel(self.prefetch)
            arguments = consumer_timeout_argument(
                consumer_timeout, self.version, names.work, classic=None, kind="consumer argument"
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

    def retry_later(self, delivery: Delivery, attempts: int, error: str) -> None:
        """Publish the message again at the tail of the work queue with its failed runs recorded
        (confirmed; PublishFailed if the broker would not take it); the delivery is still held."""
        retry_later(
            self.channel, self.names.work, delivery.body, delivery.properties, attempts=attempts, error=error
        )

    def dead_letter(self, delivery: Delivery, attempts: int, error: str) -> None:
        """Publish the message to the dead-letter exchange with its last error (confirmed, like
        retry_later); the delivery is still held."""
        dead_letter(
            self.channel, self.names, delivery.body, delivery.properties, attempts=attempts, error=error
        )

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


def _nothing() -> None:
    """A callback that only wakes the connection's thread up."""
