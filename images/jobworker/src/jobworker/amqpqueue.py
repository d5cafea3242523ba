"""The RabbitMQ work queue: connecting, declaring, seeding, retrying, dead-lettering, status.

Layout (see constants.AmqpNames): the work items are persistent messages in the durable queue Q,
reached through the default exchange, so the Kubernetes docs' `amqp-publish -r Q` and
`amqp-consume -q Q` work on it unchanged. Items that used up their attempts go to the fanout
exchange Q.failed, bound to the durable queue Q.failed; `jobworker seed` declares both and gives Q
`x-dead-letter-exchange: Q.failed`, so that anything the broker itself dead-letters (a quorum
queue's delivery limit, a message TTL, a consumer's reject) lands there too.

Attempts are counted in the message itself, not by the broker: a failed item is published again
at the tail of Q with the header x-jobworker-attempts raised by one (publisher confirm), and only
then is the delivery acknowledged. The broker's own counters cannot do this job: classic queues
have none, and quorum queues' x-delivery-count stopped counting `basic.nack` in RabbitMQ 4.3.
Publish-then-ack is not atomic, but it fails safe: a worker that dies between the two leaves the
original unacknowledged, so the broker requeues it and the item runs once more than needed;
nothing is ever lost.

Seeding is exactly once under retries. Items are published in chunks, each chunk in one AMQP
transaction together with a marker message in the durable queue Q.seed.<digest>, where the digest
identifies the whole item list (order included). A transaction's messages become visible only at
commit, so after a crash the marker queue holds one message per chunk that made it and a retried
seed resumes after them. An exclusive queue Q.seeding, which dies with its connection, keeps two
seeders of one queue from running at once. (RabbitMQ promises no atomicity when the broker itself
crashes in the middle of a commit; that window is the only one where a chunk could be doubled.)
"""

import contextlib
import logging
import re
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pika
from pika import exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils.connection_workflow import AMQPConnectorException, AMQPConnectorStackTimeout

from jobworker.constants import (
    AMQP_SEED_CHUNK,
    AMQP_SEED_DIGEST_CHARS,
    ENV_AMQP_PASSWORD,
    ENV_AMQP_USERNAME,
    HEADER_ATTEMPTS,
    HEADER_ERROR,
    HEADER_QUEUE,
    AmqpNames,
    ExitCode,
)
from jobworker.errors import JobWorkerError, UsageError
from jobworker.items import items_digest
from jobworker.logs import mask_url, url_problem
from jobworker.queues import DEFAULT_SEED, Retrying, SeedOptions, SeedResult
from jobworker.stopping import StopRequest

log = logging.getLogger(__name__)

CONNECT_BACKOFF_BASE = 0.1
CONNECT_BACKOFF_CAP = 2.0
ATTEMPT_SOCKET_SECONDS = 10.0  # one connection attempt, at most (a blackholed host never answers)
BLOCKED_SECONDS = 300.0  # a broker under a memory or disk alarm blocks publishers: give up after this
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
PERSISTENT = 2  # delivery_mode of messages written to disk
AMQP_ERROR_CHARS = 1024  # how much of an error a dead-lettered message carries in its headers
AMQP_MAX_QUEUE_NAME = 255 - len(".seed.") - AMQP_SEED_DIGEST_CHARS  # names are at most 255 bytes

# The consumer timeout, as a queue argument (`jobworker seed`) and a consumer argument (`coarse`):
# how long, in ms, a delivery may stay unacknowledged before the broker gives up on it.
ARG_CONSUMER_TIMEOUT = "x-consumer-timeout"
# RabbitMQ versions (the server properties of a connection say which): the first that honours the
# argument (older ones accept and ignore it), and the first whose classic queues never time a
# delivery out (only quorum queues do; 4.3.2 and later refuse the argument on classic queues).
RABBITMQ_CONSUMER_TIMEOUT_ARGUMENT = (3, 11, 15)
RABBITMQ_CLASSIC_QUEUES_UNTIMED = (4, 3, 0)
# A quorum queue's delivery limit: from RabbitMQ 4.0 a message given back more than 20 times is
# dead-lettered, or dropped where the queue has no dead-letter exchange; -1 turns the limit off
# (before 4.0 there is no default, and -1 would drop a message at its first return).
ARG_DELIVERY_LIMIT = "x-delivery-limit"
RABBITMQ_DEFAULT_DELIVERY_LIMIT = (4, 0, 0)
NO_DELIVERY_LIMIT = -1

# Headers of the seed markers (see the module docstring).
HEADER_SEED_CHUNK = "x-jobworker-seed-chunk"  # on seed markers: the chunk's index
HEADER_SEED_ITEMS = "x-jobworker-seed-items"  # on seed markers: the items in the chunk


class Broker(NamedTuple):
    """Where to connect and as whom; `location` (no credentials) is what messages show."""

    parameters: pika.URLParameters
    username: str
    location: str  # host:port/vhost, the vhost URL-encoded as in the URL
    connect_timeout: float


def broker_from(url: str, environ: Mapping[str, str], connect_timeout: float, connection_name: str) -> Broker:
    """Connection parameters from an amqp:// URL, with credentials from it or the environment.

    The URL's own user and password win; AMQP_USERNAME / AMQP_PASSWORD fill in what it leaves out
    (the charts pass the URL without them and the credentials from a Secret). There is no implicit
    guest user: a missing user or password is an error.
    """
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("amqp", "amqps"):
            raise ValueError("the scheme must be amqp:// or amqps://")
        parameters = pika.URLParameters(url)
    except ValueError as error:
        raise UsageError(f"bad AMQP URL {mask_url(url)!r}: {url_problem(url, str(error))}") from None
    username = unquote(parts.username) if parts.username else environ.get(ENV_AMQP_USERNAME, "")
    password = unquote(parts.password) if parts.password else environ.get(ENV_AMQP_PASSWORD, "")
    if not username:
        raise UsageError(
            f"no RabbitMQ user given: set {ENV_AMQP_USERNAME} and {ENV_AMQP_PASSWORD} "
            "(or put them in the URL); the guest user is never assumed"
        )
    if not password:
        raise UsageError(f"no password for RabbitMQ user {username!r}: set {ENV_AMQP_PASSWORD}")
    parameters.credentials = pika.PlainCredentials(username, password)
    given = parse_qs(parts.query)
    # One connection attempt, handshake included, waits at most this long: a port that accepts and
    # never answers (Redis's, a proxy without a backend) is retried within --connect-timeout, not
    # for pika's own 15 s per attempt.
    attempt_seconds = max(min(ATTEMPT_SOCKET_SECONDS, connect_timeout), 1.0)
    if "socket_timeout" not in given:
        parameters.socket_timeout = attempt_seconds
    if "stack_timeout" not in given:
        parameters.stack_timeout = attempt_seconds
    if "blocked_connection_timeout" not in given:
        parameters.blocked_connection_timeout = BLOCKED_SECONDS
    parameters.client_properties = {"connection_name": connection_name}
    location = f"{parameters.host}:{parameters.port}/{quote(parameters.virtual_host, safe='')}"
    return Broker(parameters, username, location, connect_timeout)


def quiet_pika() -> None:
    """pika logs each failed connection attempt with tracebacks; our one-line errors say it all."""
    logger = logging.getLogger("pika")
    logger.handlers[:] = [logging.NullHandler()]
    logger.propagate = False


def connect(broker: Broker, stop: StopRequest | None = None) -> pika.BlockingConnection:
    """Connect, retrying with backoff for up to `broker.connect_timeout` seconds.

    Refused credentials or a refused virtual host are not retried: waiting does not fix them. An
    unreachable or restarting broker is retried, so that worker pods started before the broker is
    ready (or during its restart) simply wait for it.
    """
    quiet_pika()
    deadline = time.monotonic() + broker.connect_timeout
    delay = CONNECT_BACKOFF_BASE
    announced = False  # a line at the first failure, so that the wait is not silent
    while True:
        try:
            return pika.BlockingConnection(broker.parameters)
        except exceptions.ProbableAuthenticationError:
            raise JobWorkerError(
                f"RabbitMQ at {broker.location} refused the credentials of user {broker.username!r}"
            ) from None
        except exceptions.ProbableAccessDeniedError as error:
            raise JobWorkerError(
                f"RabbitMQ at {broker.location} refused access to virtual host "
                f"{broker.parameters.virtual_host!r}: {describe(error)}"
            ) from None
        except (exceptions.AMQPConnectionError, AMQPConnectorException, OSError) as error:
            # pika calls a connection that ends before the server's greeting "incompatible
            # protocol", but a broker starting or stopping (or a port proxy in front of it) ends
            # connections just so: both are retried, with a reason that names either cause.
            if isinstance(error, AMQPConnectorStackTimeout):
                reason = (
                    "it accepted the connection but did not answer the AMQP handshake: "
                    "is it the broker's AMQP port?"
                )
            elif isinstance(error, exceptions.IncompatibleProtocolError):
                reason = (
                    "it ended the connection before the AMQP handshake "
                    "(still starting, or not the broker's AMQP port?)"
                )
            else:
                reason = describe(error)
        if stop is not None and stop.requested:
            raise JobWorkerError("stopped while connecting to RabbitMQ", ExitCode.TERMINATED)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise JobWorkerError(
                f"cannot reach RabbitMQ at {broker.location} after {broker.connect_timeout:g} s: {reason}"
            )
        if not announced:
            announced = True
            log.info(
                "RabbitMQ at %s does not answer yet (%s): waiting up to %g s for it",
                broker.location,
                reason,
                broker.connect_timeout,
            )
        log.debug("RabbitMQ at %s not reachable (%s); retrying", broker.location, reason)
        wait = min(delay, remaining)
        if stop is not None:
            stop.sleep(wait)
        else:
            time.sleep(wait)
        delay = min(delay * 2, CONNECT_BACKOFF_CAP)


def describe(error: BaseException) -> str:
    """A readable reason from pika's nested exceptions (they wrap the socket error several deep)."""
    if isinstance(error, exceptions.ChannelClosed | exceptions.ConnectionClosed):
        return f"{error.reply_code} {error.reply_text}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    nested = [getattr(error, "exception", None), *(getattr(error, "exceptions", None) or [])[-1:]]
    for arg in [*nested, *getattr(error, "args", ())]:
        if isinstance(arg, BaseException):
            return describe(arg)
        if isinstance(arg, str) and arg:
            return arg
    return type(error).__name__


def server_version(connection: pika.BlockingConnection) -> tuple[int, ...] | None:
    """The broker's version from the server properties it sent when the connection opened
    ("4.3.6" -> (4, 3, 6)); None when it gives none that reads as one."""
    properties = getattr(connection._impl, "server_properties", None) or {}
    value = properties.get("version", b"")
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part or 0) for part in found.groups()) if found else None


def _version_text(version: tuple[int, ...] | None) -> str:
    return ".".join(map(str, version)) if version else "(version unknown)"


def consumer_timeout_argument(
    seconds: float | None, version: tuple[int, ...] | None, queue: str, *, classic: bool | None, kind: str
) -> dict[str, int]:
    """The x-consumer-timeout argument (`kind`: queue or consumer argument) for a limit of
    `seconds`, or none where it would do nothing.

    A broker older than 3.11.15 accepts and ignores it: sent, it would only pretend to be a limit.
    RabbitMQ 4.3 and later time no delivery of a classic queue out, and from 4.3.2 refuse the
    argument there (406 PRECONDITION_FAILED), which would fail the seed or the worker for nothing.
    One line says why it is left out. `classic` is None when the queue's type is unknown (AMQP
    0-9-1 does not tell a worker): the broker's refusal tells then, see refuses_consumer_timeout.
    An unknown version counts as a current one.
    """
    if not seconds:
        return {}
    if version is not None and version < RABBITMQ_CONSUMER_TIMEOUT_ARGUMENT:
        log.warning(
            "--consumer-timeout left out: RabbitMQ %s ignores the %s %s (honoured from 3.11.15), so "
            "the server's consumer_timeout applies to queue %r; raise that one for long items",
            _version_text(version),
            kind,
            ARG_CONSUMER_TIMEOUT,
            queue,
        )
        return {}
    if classic and (version is None or version >= RABBITMQ_CLASSIC_QUEUES_UNTIMED):
        log_classic_untimed(version, queue, kind)
        return {}
    return {ARG_CONSUMER_TIMEOUT: round(seconds * 1000)}


def log_classic_untimed(version: tuple[int, ...] | None, queue: str, kind: str) -> None:
    log.info(
        "--consumer-timeout left out: queue %r is a classic queue, and RabbitMQ %s times out no "
        "delivery of a classic queue (4.3 and later; they refuse the %s %s there), so it needs no limit",
        queue,
        _version_text(version),
        kind,
        ARG_CONSUMER_TIMEOUT,
    )


def refuses_consumer_timeout(error: exceptions.ChannelClosedByBroker) -> bool:
    """The broker refused the argument x-consumer-timeout (RabbitMQ 4.3.2+ on a classic queue)."""
    return error.reply_code == PRECONDITION_FAILED and f"invalid arg '{ARG_CONSUMER_TIMEOUT}'" in str(
        error.reply_text
    )


def validate_queue_name(name: str) -> str:
    if not name:
        raise UsageError("no queue name given (--queue or QUEUE_NAME)")
    if len(name.encode()) > AMQP_MAX_QUEUE_NAME:
        raise UsageError(f"queue name {name[:40]!r}... is longer than {AMQP_MAX_QUEUE_NAME} bytes")
    if name.startswith("amq."):
        raise UsageError(f"queue name {name!r} is reserved: RabbitMQ keeps names starting amq. to itself")
    return name


def attempts_of(properties: pika.BasicProperties) -> int:
    """Failed runs recorded in a message; any publisher may leave the header out (none yet)."""
    value = (properties.headers or {}).get(HEADER_ATTEMPTS, 0)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def error_of(properties: pika.BasicProperties) -> str:
    value = (properties.headers or {}).get(HEADER_ERROR, "")
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def with_headers(properties: pika.BasicProperties, headers: Mapping[str, Any]) -> pika.BasicProperties:
    """A copy of a message's properties with its headers updated (None removes a header).

    user_id is dropped: the broker checks it against the publishing user, who is now us.
    """
    merged = dict(properties.headers or {})
    for key, value in headers.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return pika.BasicProperties(
        content_type=properties.content_type,
        content_encoding=properties.content_encoding,
        headers=merged or None,
        delivery_mode=properties.delivery_mode,
        priority=properties.priority,
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
        expiration=properties.expiration,
        message_id=properties.message_id,
        timestamp=properties.timestamp,
        type=properties.type,
        app_id=properties.app_id,
    )


class PublishFailed(Exception):
    """A confirmed publish did not go through: the message it was meant to replace stays put."""


def publish_confirmed(
    channel: BlockingChannel, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties
) -> None:
    """Publish on a channel in confirm mode and return once the broker has the message.

    mandatory=True turns "no queue bound" into an error instead of a silent drop.
    """
    target = f"exchange {exchange!r}" if exchange else f"queue {routing_key!r}"
    try:
        channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
    except exceptions.UnroutableError:
        raise PublishFailed(f"{target} routes to no queue") from None
    except exceptions.NackError:
        raise PublishFailed(f"the broker refused the message for {target}") from None
    except exceptions.ChannelClosedByBroker as error:
        if error.reply_code == NOT_FOUND:
            raise PublishFailed(f"{target} does not exist") from None
        raise PublishFailed(f"publishing to {target} failed: {describe(error)}") from None


def retry_later(
    channel: BlockingChannel,
    queue: str,
    body: bytes,
    properties: pika.BasicProperties,
    *,
    attempts: int,
    error: str,
) -> None:
    """Put an item back at the tail of its queue with one more failed attempt recorded."""
    headers = {HEADER_ATTEMPTS: attempts, HEADER_ERROR: error[-AMQP_ERROR_CHARS:]}
    publish_confirmed(channel, "", queue, body, with_headers(properties, headers))


def dead_letter(
    channel: BlockingChannel,
    names: AmqpNames,
    body: bytes,
    properties: pika.BasicProperties,
    *,
    attempts: int,
    error: str,
) -> None:
    """Move an item that used up its attempts to the dead-letter exchange, with its last error."""
    headers = {HEADER_ATTEMPTS: attempts, HEADER_ERROR: error[-AMQP_ERROR_CHARS:], HEADER_QUEUE: names.work}
    publish_confirmed(channel, names.failed, names.work, body, with_headers(properties, headers))


class QueueCounts(NamedTuple):
    ready: int  # messages waiting in the queue
    consumers: int


class AmqpStatus(NamedTuple):
    """What AMQP 0-9-1 tells about a queue without the management plugin.

    It reports the ready messages and the consumers, not the unacknowledged messages (the
    management API and `rabbitmqctl list_queues messages_unacknowledged` do); `unacked` is None.
    With one-message workers each consumer holds at most one message, so `consumers` bounds the
    items in flight.
    """

    ready: int
    consumers: int
    failed: int | None  # None when there is no dead-letter queue Q.failed
    unacked: None = None

    def as_dict(self) -> dict[str, int | None]:
        return {
            "ready": self.ready,
            "unacked": self.unacked,
            "consumers": self.consumers,
            "failed": self.failed,
        }

    def lines(self, queue: str) -> list[str]:
        failed = AmqpNames.for_queue(queue).failed
        return [
            f"queue {queue} (RabbitMQ)",
            f"  ready      {self.ready}",
            "  unacked    not reported over AMQP (see the management UI, or "
            "rabbitmqctl list_queues messages_unacknowledged)",
            f"  consumers  {self.consumers}",
            f"  failed     {self.failed}" if self.failed is not None else f"  failed     - (no {failed})",
        ]


class AmqpQueue:
    """One named work queue on a RabbitMQ broker: the producers' and operators' WorkQueue (queues.py).

    Workers consume through jobworker.amqpconsumer; this class declares, seeds and inspects. A
    channel that the broker closes (a passive declare of a missing queue closes it) is replaced on
    the next call.
    """

    seed_verb = "published"

    def __init__(self, connection: pika.BlockingConnection, name: str, broker: Broker) -> None:
        self.connection = connection
        self.names = AmqpNames.for_queue(validate_queue_name(name))
        self.name = self.names.work
        self.broker = broker
        self._channel: BlockingChannel | None = None

    def close(self) -> None:
        with contextlib.suppress(exceptions.AMQPError, OSError):
            self.connection.close()

    # --- channels and errors --------------------------------------------------------------------
    def channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self._channel = self._call("open a channel", self.connection.channel)
        return self._channel

    def _call(self, what: str, function: Callable, *args: object, **kwargs: object):
        """One AMQP call, with the errors a user can fix turned into one-line messages."""
        try:
            return function(*args, **kwargs)
        except exceptions.ChannelClosedByBroker as error:
            raise JobWorkerError(f"RabbitMQ refused to {what}: {describe(error)}") from None
        except (exceptions.AMQPConnectionError, OSError) as error:
            raise JobWorkerError(
                f"lost the connection to RabbitMQ at {self.broker.location} while trying to {what}: "
                f"{describe(error)}"
            ) from None

    def counts(self, queue: str) -> QueueCounts | None:
        """Ready messages and consumers of a queue (a passive declare), None when it does not exist."""
        try:
            ok = self.channel().queue_declare(queue, passive=True)
        except exceptions.ChannelClosedByBroker as error:
            if error.reply_code == NOT_FOUND:
                return None
            raise JobWorkerError(f"RabbitMQ refused to look up queue {queue!r}: {describe(error)}") from None
        except (exceptions.AMQPConnectionError, OSError) as error:
            raise JobWorkerError(
                f"lost the connection to RabbitMQ at {self.broker.location}: {describe(error)}"
            ) from None
        return QueueCounts(ready=ok.method.message_count, consumers=ok.method.consumer_count)

    def require(self) -> QueueCounts:
        counts = self.counts(self.name)
        if counts is None:
            raise JobWorkerError(
                f"queue {self.name!r} does not exist on RabbitMQ at {self.broker.location}: "
                "create it with `jobworker seed --amqp-url ...` (or declare it durable)"
            )
        return counts

    # --- producers ------------------------------------------------------------------------------
    def declare(self, quorum: bool = False, consumer_timeout: float | None = None) -> bool:
        """Declare the dead-letter exchange, and the dead-letter and work queues unless they exist.

        An existing queue is used as it is (its type and arguments cannot change, and a queue
        made with `amqp-declare-queue` is fine): True means this call created the work queue.

        A quorum Q.failed gets no delivery limit on RabbitMQ 4.0+ (whose default is 20): what the
        broker dead-letters from Q for its delivery limit arrives with that count, and a queue
        without a dead-letter exchange of its own drops a message over its limit the next time it
        is given back, as `jobworker status` does with every item it shows. Only where the version
        is known: before 4.0, the same -1 drops a message at its first return.
        """
        version = server_version(self.connection)
        arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
        what = f"declare the dead-letter exchange and queue {self.names.failed!r}"
        self._call(
            what, self.channel().exchange_declare, self.names.failed, exchange_type="fanout", durable=True
        )
        if self.counts(self.names.failed) is None:
            failed_arguments = dict(arguments)
            if quorum and version is not None and version >= RABBITMQ_DEFAULT_DELIVERY_LIMIT:
                failed_arguments[ARG_DELIVERY_LIMIT] = NO_DELIVERY_LIMIT
            declare = self.channel().queue_declare
            self._call(what, declare, self.names.failed, durable=True, arguments=failed_arguments)
        self._call(what, self.channel().queue_bind, self.names.failed, self.names.failed)
        if self.counts(self.name) is not None:
            log.info("queue %r exists: using it as it is (its type and arguments are kept)", self.name)
            return False
        arguments["x-dead-letter-exchange"] = self.names.failed
        arguments |= consumer_timeout_argument(
            consumer_timeout, version, self.name, classic=not quorum, kind="queue argument"
        )
        self._call(
            f"declare queue {self.name!r}",
            self.channel().queue_declare,
            self.name,
            durable=True,
            arguments=arguments,
        )
        return True

    def seed(
        self,
        items: Sequence[bytes],
        options: SeedOptions = DEFAULT_SEED,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SeedResult:
        """Publish the items as persistent messages, exactly once across retries (see the module doc).

        Of the options, `seal` does not apply: RabbitMQ queues have no end-of-input marker."""
        digest = items_digest(items, prefix=struct.pack(">Q", AMQP_SEED_CHUNK))
        marker = self.names.seed_marker(digest)
        chunks = -(-len(items) // AMQP_SEED_CHUNK)
        # Every pod of a coarse Job seeds, and after the first the markers say it is all there: a
        # look at them before the lock spares those pods from waiting for each other's look.
        # Markers are committed with their chunks, so a complete set means every item is in.
        committed = self.counts(marker)
        if items and committed and committed.ready >= chunks:
            return SeedResult(pushed=0, total=len(items), already_seeded=True)
        self._take_seed_lock(options.lock_seconds)
        created = self.declare(options.quorum, options.consumer_timeout)
        self._call(
            f"declare the seed marker queue {marker!r}", self.channel().queue_declare, marker, durable=True
        )
        committed = self.counts(marker)
        done_chunks = committed.ready if committed else 0
        if done_chunks >= chunks:
            return SeedResult(pushed=0, total=len(items), already_seeded=bool(items), created=created)
        if done_chunks:
            log.info("resuming an interrupted seed: %d of %d chunks were committed", done_chunks, chunks)
        if on_progress:
            on_progress(done_chunks * AMQP_SEED_CHUNK, len(items))
        channel = self._call("open a channel", self.connection.channel)
        returned: list[str] = []
        channel.add_on_return_callback(lambda _ch, method, _props, _body: returned.append(method.routing_key))
        self._call("start a transaction", channel.tx_select)
        start = done_chunks * AMQP_SEED_CHUNK
        for index in range(done_chunks, chunks):
            first = index * AMQP_SEED_CHUNK
            chunk = items[first : first + AMQP_SEED_CHUNK]
            for offset, item in enumerate(chunk, first):
                properties = pika.BasicProperties(
                    delivery_mode=PERSISTENT, app_id="jobworker", message_id=f"{digest[:16]}-{offset}"
                )
                self._call("publish", channel.basic_publish, "", self.name, item, properties, mandatory=True)
            mark = pika.BasicProperties(
                delivery_mode=PERSISTENT,
                app_id="jobworker",
                headers={HEADER_SEED_CHUNK: index, HEADER_SEED_ITEMS: len(chunk)},
            )
            self._call("publish", channel.basic_publish, "", marker, digest.encode(), mark, mandatory=True)
            self._call(f"commit chunk {index + 1} of {chunks}", channel.tx_commit)
            self.connection.process_data_events(0)  # delivers any basic.return of the commit
            if returned:
                raise JobWorkerError(
                    f"queue {returned[0]!r} disappeared while seeding (deleted by someone?): "
                    f"chunk {index + 1} of {chunks} was not stored whole; delete the queues and seed again"
                )
            if on_progress:
                on_progress(first + len(chunk), len(items))
        with contextlib.suppress(exceptions.AMQPError):
            channel.close()
        return SeedResult(pushed=len(items) - start, total=len(items), already_seeded=False, created=created)

    def _take_seed_lock(self, wait_seconds: float) -> None:
        """Hold the exclusive queue Q.seeding: only one seeder per queue, released when we disconnect."""
        deadline = time.monotonic() + wait_seconds
        delay = CONNECT_BACKOFF_BASE
        while True:
            try:
                self.channel().queue_declare(self.names.seeding, exclusive=True, auto_delete=True)
                return
            except exceptions.ChannelClosedByBroker as error:
                if error.reply_code != RESOURCE_LOCKED:
                    raise JobWorkerError(
                        f"RabbitMQ refused to declare {self.names.seeding!r}: {describe(error)}"
                    ) from None
            except (exceptions.AMQPConnectionError, OSError) as error:
                raise JobWorkerError(
                    f"lost the connection to RabbitMQ at {self.broker.location}: {describe(error)}"
                ) from None
            if time.monotonic() + delay > deadline:
                raise JobWorkerError(
                    f"another `jobworker seed` is running on queue {self.name!r} "
                    f"(it holds {self.names.seeding!r}); wait for it to finish"
                )
            time.sleep(delay)
            delay = min(delay * 2, CONNECT_BACKOFF_CAP)

    # --- operators ------------------------------------------------------------------------------
    def status(self) -> AmqpStatus:
        counts = self.require()
        failed = self.counts(self.names.failed)
        return AmqpStatus(
            ready=counts.ready, consumers=counts.consumers, failed=failed.ready if failed else None
        )

    def failed_items(self, limit: int) -> list[tuple[bytes, str]]:
        """The first dead-lettered items with their errors, looked at and put back in place."""
        if self.counts(self.names.failed) is None:
            return []
        channel = self._call("open a channel", self.connection.channel)
        found: list[tuple[bytes, str]] = []
        try:
            for _ in range(limit):
                method, properties, body = self._call(
                    "read the failed queue", channel.basic_get, self.names.failed
                )
                if method is None:
                    break
                found.append((body, error_of(properties) or _death_reason(properties)))
            if found:
                self._call("put failed items back", channel.basic_nack, 0, multiple=True, requeue=True)
        finally:
            with contextlib.suppress(exceptions.AMQPError):
                channel.close()
        return found

    def retrying(self, limit: int) -> list[Retrying]:
        """None reported: the attempts are recorded in the messages, which cannot be read where
        they wait without taking them from the workers."""
        return []

    def requeue_failed(self) -> int:
        """Move every dead-lettered item back to the tail of the work queue with fresh attempts.

        Each move is publish (confirmed), then ack: a crash in between leaves a copy in both
        queues, never in neither.
        """
        self.require()
        channel = self._call("open a channel", self.connection.channel)
        self._call("enable publisher confirms", channel.confirm_delivery)
        moved = 0
        while True:
            method, properties, body = self._call(
                "read the failed queue", channel.basic_get, self.names.failed
            )
            if method is None:
                break
            fresh = with_headers(properties, {HEADER_ATTEMPTS: None, HEADER_ERROR: None, HEADER_QUEUE: None})
            try:
                publish_confirmed(channel, "", self.name, body, fresh)
            except PublishFailed as error:
                raise JobWorkerError(
                    f"cannot move failed items back to queue {self.name!r}: {error}"
                ) from None
            self._call("acknowledge a moved item", channel.basic_ack, method.delivery_tag)
            moved += 1
        with contextlib.suppress(exceptions.AMQPError):
            channel.close()
        return moved


def _death_reason(properties: pika.BasicProperties) -> str:
    """Why the broker dead-lettered a message on its own (x-death), for items we did not move."""
    deaths = (properties.headers or {}).get("x-death") or []
    if deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason", b"")
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return f"dead-lettered by the broker ({reason})"
    return "no error recorded"
