"""What the operator subcommands need of a queue, whichever broker holds it.

`jobworker seed`, `status` and `requeue-failed` work on a Redis list (redisqueue.RedisQueue) or a
RabbitMQ queue (amqpqueue.AmqpQueue), picked by --amqp-url. Both queues provide the WorkQueue
protocol below, so that each of those subcommands has one body in cli.py. The workers do not go
through it: leasing batches from Redis (fine.py) and holding deliveries from RabbitMQ (coarse.py)
have nothing in common but the item.

This module imports neither redis-py nor pika, so that cli.py can use it in any image.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple, Protocol


class SeedOptions(NamedTuple):
    """How to seed; each broker reads what applies to it (cli.py refuses the others' options)."""

    seal: bool = True  # Redis: mark the end of input once the items are in (RabbitMQ has no marker)
    quorum: bool = False  # RabbitMQ: a new queue is a quorum queue
    consumer_timeout: float | None = None  # RabbitMQ: a new queue's x-consumer-timeout, in seconds
    lock_seconds: float = 0.0  # RabbitMQ: how long to wait for another seeder of the queue to finish


DEFAULT_SEED = SeedOptions()


class SeedResult(NamedTuple):
    pushed: int  # items added by this run
    total: int
    already_seeded: bool  # an earlier run had added them all
    created: bool = False  # RabbitMQ: this run declared the queue
    sealed: bool | None = None  # Redis: the queue is sealed now; None where queues have no marker


class Retrying(NamedTuple):
    """An item waiting for another run after a failed run or a lost worker."""

    item: bytes
    attempts: int  # charged so far
    error: str  # the last one


class QueueStatus(Protocol):
    """A queue's counts, as each broker can tell them."""

    @property
    def failed(self) -> int | None:
        """Items that used up their attempts; None when there is no place for them yet."""
        ...

    def as_dict(self) -> Mapping[str, object]:
        """The counts for `jobworker status --json`."""
        ...

    def lines(self, queue: str) -> list[str]:
        """The heading and the counts of `jobworker status`, one line each."""
        ...


class WorkQueue(Protocol):
    """One named work queue, for producers and operators."""

    name: str
    seed_verb: str  # what seeding does with an item ("pushed", "published"), for the log lines

    def seed(
        self,
        items: Sequence[bytes],
        options: SeedOptions = DEFAULT_SEED,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SeedResult:
        """Add the items at the tail, exactly once even when the same seed is run again."""
        ...

    def status(self) -> QueueStatus: ...

    def failed_items(self, limit: int) -> list[tuple[bytes, str]]:
        """The first items that used up their attempts, with their last errors."""
        ...

    def retrying(self, limit: int) -> list[Retrying]:
        """The first items waiting for another run that have attempts charged."""
        ...

    def requeue_failed(self) -> int:
        """Put the items that used up their attempts back on the queue; how many were moved."""
        ...

    def close(self) -> None: ...
