"""Names and defaults shared by the workers, in one place.

Charts, tests and documentation rely on these values (exit codes in podFailurePolicy, key names in
`redis-cli` recipes, environment variable names in pod specs, the defaults the settings table
shows), so they are defined once here and nowhere else. A value that one module alone uses lives
in that module.
"""

from enum import IntEnum
from typing import NamedTuple


class ExitCode(IntEnum):
    """Process exit statuses. The charts' podFailurePolicy rules match on these numbers."""

    OK = 0
    ERROR = 1  # bad input or an unreachable service: a one-line message says which
    USAGE = 2  # argparse's own status for a malformed command line
    ITEMS_FAILED = 3  # the queue is finished but some items ended in the failed list
    NO_WORK = 4  # --wait expired without any work arriving
    ITEM_REQUEUED = 5  # coarse: the item failed and went back to the queue for another attempt
    TERMINATED = 143  # stopped by SIGTERM/SIGINT after handing unfinished work back (128 + 15)


# --- environment variables (every option can also come from the environment) -------------------
ENV_REDIS_URL = "REDIS_URL"
ENV_REDIS_PASSWORD = "REDIS_PASSWORD"  # noqa: S105 - a variable name; used when the URL has none
ENV_AMQP_URL = "AMQP_URL"
ENV_AMQP_USERNAME = "AMQP_USERNAME"
ENV_AMQP_PASSWORD = "AMQP_PASSWORD"  # noqa: S105 - a variable name
ENV_QUEUE = "QUEUE_NAME"
ENV_CONNECT_TIMEOUT = "CONNECT_TIMEOUT"
ENV_LEASE_SECONDS = "LEASE_SECONDS"
ENV_MAX_ATTEMPTS = "MAX_ATTEMPTS"
ENV_BATCH_SIZE = "BATCH_SIZE"
ENV_WAIT_SECONDS = "WAIT_SECONDS"
ENV_GRACE_SECONDS = "GRACE_SECONDS"
ENV_WAIT_FOR_SEAL = "WAIT_FOR_SEAL"
ENV_DELIVERY = "ITEM_DELIVERY"
ENV_HANDLER = "HANDLER"
ENV_ITEMS_FILE = "ITEMS_FILE"
ENV_LOG_FORMAT = "LOG_FORMAT"
ENV_LOG_LEVEL = "LOG_LEVEL"
ENV_WORK_ITEM = "WORK_ITEM"  # the item handed to a command with --deliver env
ENV_JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"  # set by Kubernetes in Indexed Jobs
ENV_INDEX_FILE = "INDEX_FILE"  # a downward API file holding the completion index annotation
ENV_ITEMS_FORMAT = "ITEMS_FORMAT"  # auto, lines or json
ENV_WRITE_ITEM = "WRITE_ITEM_PATH"  # `jobworker indexed --write-item`: the init-container variant

# The worker's variables that its program never gets: the broker's credentials and URLs, which may
# carry a password. The program handles untrusted items and needs none of them (runner.py).
ENV_WITHHELD_FROM_PROGRAM = (
    ENV_REDIS_URL,
    ENV_REDIS_PASSWORD,
    ENV_AMQP_URL,
    ENV_AMQP_USERNAME,
    ENV_AMQP_PASSWORD,
)

# --- `jobworker coarse` and `jobworker seed` against RabbitMQ ----------------------------------
ENV_DRAIN = "DRAIN"  # `jobworker coarse --drain`: true, 1 or yes
ENV_PREFETCH = "PREFETCH"
ENV_IDLE_SECONDS = "IDLE_SECONDS"
ENV_CONSUMER_TIMEOUT = "CONSUMER_TIMEOUT"
ENV_QUORUM = "QUORUM_QUEUE"  # `jobworker seed --quorum`: true, 1 or yes
ENV_SEED_FILE = "SEED_FILE"  # `jobworker coarse --seed-file`: the items it seeds before it consumes

# --- placeholders in a command's arguments ------------------------------------------------------
PLACEHOLDER_ITEM = "{item}"
PLACEHOLDER_ITEM_FILE = "{item_file}"
PLACEHOLDER_INDEX = "{index}"

# --- defaults -----------------------------------------------------------------------------------
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BATCH_SIZE_COMMAND = 1  # commands are slow: leasing ahead would starve other pods
DEFAULT_BATCH_SIZE_HANDLER = 500  # in-process handlers are fast: amortise the round trip
DEFAULT_WAIT_SECONDS = 600.0  # how long an open (unsealed) queue may stay without work
# On SIGTERM, the program may still run DEFAULT_GRACE_SECONDS; then its process group gets SIGTERM,
# and SIGKILL KILL_AFTER_TERM_SECONDS later; handing the item back and exiting takes a moment more
# (HAND_BACK_SECONDS at most, a round trip or two to the broker). The charts' job pods get
# terminationGracePeriodSeconds >= graceSeconds + KILL_AFTER_TERM_SECONDS + HAND_BACK_SECONDS
# (their validateValues refuses less; a test checks that the numbers agree), so the worker is done
# before the kubelet's SIGKILL: 20 + 5 + 5 = 30, the charts' default.
DEFAULT_GRACE_SECONDS = 20.0
KILL_AFTER_TERM_SECONDS = 5.0
HAND_BACK_SECONDS = 5.0
DEFAULT_CONNECT_SECONDS = 60.0  # total time spent retrying an unreachable service
DEFAULT_AMQP_URL = "amqp://localhost:5672/%2F"
DEFAULT_PREFETCH = 1  # --drain: messages held ahead; more is faster but starves other pods of work
DEFAULT_IDLE_SECONDS = 5.0  # --drain: the queue counts as drained after this long without a message
AMQP_SEED_CHUNK = 1000  # items per transaction of `jobworker seed` (part of the seed's identity)


# --- Redis keys ---------------------------------------------------------------------------------
class RedisKeys(NamedTuple):
    """The keys of one Redis work queue.

    The queue itself is the plain list named Q, so `redis-cli rpush Q item` keeps working. Every
    other key is "{Q}:suffix": the braces make Redis Cluster hash only "Q", which puts all of a
    queue's keys, Q included, in one slot, as multi-key Lua scripts require. No key carries a TTL,
    so an eviction policy of volatile-* cannot drop a lease early.
    """

    pending: str  # list of raw items, pushed at the tail, taken from the head (FIFO)
    retry: str  # list of packed records: items to run again (failed once, or handed back)
    leased: str  # sorted set: lease id -> deadline in ms of Redis server time
    leases: str  # hash: lease id -> packed batch of the items the lease holds
    in_flight: str  # number of items currently leased
    done: str  # number of items completed
    failed: str  # list of the items that used up their attempts (raw bytes, as pushed)
    failed_errors: str  # the last error of each failed item, at the same position
    state: str  # "open" while a producer is pushing, "sealed" at end of input; absent by hand
    seed: str  # hash recording the progress of `jobworker seed`, for retries
    next_lease: str  # lease id counter
    progress: str  # hash: lease id -> "position stride" reported by its worker (absent: "0 0")
    debts: str  # hash: lost lease id -> its candidates that have not run again since (see redisqueue)
    # Not a key: the Pub/Sub channel on which scripts announce that items or leases ended or came
    # back, so that idle workers look again at once instead of at their next poll.
    changes: str

    @classmethod
    def for_queue(cls, queue: str) -> "RedisKeys":
        tag = "{" + queue + "}"
        return cls(
            pending=queue,
            retry=f"{tag}:retry",
            leased=f"{tag}:leased",
            leases=f"{tag}:leases",
            in_flight=f"{tag}:in_flight",
            done=f"{tag}:done",
            failed=f"{tag}:failed",
            failed_errors=f"{tag}:failed:errors",
            state=f"{tag}:state",
            seed=f"{tag}:seed",
            next_lease=f"{tag}:next_lease",
            progress=f"{tag}:progress",
            debts=f"{tag}:debts",
            changes=f"{tag}:changes",
        )


STATE_OPEN = b"open"
STATE_SEALED = b"sealed"


# --- RabbitMQ names -----------------------------------------------------------------------------
AMQP_SEED_DIGEST_CHARS = 16  # of the seed digest, in the name of its marker queue


class AmqpNames(NamedTuple):
    """The exchanges and queues that go with one RabbitMQ work queue Q.

    Q itself is an ordinary durable queue reached through the default exchange, so the Kubernetes
    docs' `amqp-publish -r Q` and `amqp-consume -q Q` keep working. The dead-letter exchange and
    queue share the name Q.failed (exchanges and queues are separate namespaces).
    """

    work: str  # the queue of work items
    failed: str  # fanout exchange and queue of the items that used up their attempts
    seeding: str  # exclusive queue held by a running `jobworker seed`: a lock that dies with it
    seed_prefix: str  # + digest: durable queue with one marker message per committed seed chunk

    @classmethod
    def for_queue(cls, queue: str) -> "AmqpNames":
        return cls(
            work=queue,
            failed=f"{queue}.failed",
            seeding=f"{queue}.seeding",
            seed_prefix=f"{queue}.seed.",
        )

    def seed_marker(self, digest: str) -> str:
        return self.seed_prefix + digest[:AMQP_SEED_DIGEST_CHARS]


# Message headers the coarse worker reads and writes (any publisher may leave them out).
HEADER_ATTEMPTS = "x-jobworker-attempts"  # failed runs so far; a message without it has none
HEADER_ERROR = "x-jobworker-error"  # the last failure: exit status and the end of stderr
HEADER_QUEUE = "x-jobworker-queue"  # on dead-lettered messages: the work queue they came from
