"""The Redis work queue: a plain list of items, leased in batches, with crash recovery.

Layout (see constants.RedisKeys): producers RPUSH raw items onto the list Q and workers take them
from its head, so items run in the order they were pushed and `redis-cli rpush Q item` keeps
working. A worker takes a batch of items under a lease: the batch is packed into one field of the
hash {Q}:leases and the lease's deadline (Redis server time, so pod clocks do not matter) is kept
in the sorted set {Q}:leased. Every state change is one Lua script, so an item is always in exactly
one place: the list, the retry list, a lease, the done count or the failed list. A lease whose
deadline passes (its worker was killed) is reclaimed by the next worker that asks for work.

Acknowledging a batch and leasing the next one is a single script call: a worker pays one round
trip per batch, not several per item as the Kubernetes docs' helper does.
"""

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from jobworker.constants import (
    DEFAULT_CONNECT_SECONDS,
    ENV_REDIS_PASSWORD,
    SEED_BATCH_SIZE,
    STATE_SEALED,
    RedisKeys,
)
from jobworker.errors import JobWorkerError, UsageError
from jobworker.items import items_digest

log = logging.getLogger(__name__)

RETRY_BACKOFF_BASE = 0.1
RETRY_BACKOFF_CAP = 2.0
RECLAIM_LIMIT = 100  # expired leases reclaimed per call, so that one call never runs long

# Helpers shared by the scripts. A record is {item, attempts, last error}: attempts counts the
# leases taken so far, so a worker that dies holding an item uses up one of its attempts and a
# poison item that kills every worker still ends in the failed list.
_LUA_PRELUDE = """
local K_PENDING, K_RETRY, K_LEASED, K_LEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_IN_FLIGHT, K_DONE, K_FAILED, K_FAILED_ERRORS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_STATE, K_NEXT_LEASE = KEYS[9], KEYS[10]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function retry_or_fail(record, err, max_attempts)
  if record[2] >= max_attempts then
    redis.call('RPUSH', K_FAILED, record[1])
    redis.call('RPUSH', K_FAILED_ERRORS, err)
  else
    redis.call('RPUSH', K_RETRY, cmsgpack.pack({record[1], record[2], err}))
  end
end

local function end_lease(id)
  local blob = redis.call('HGET', K_LEASES, id)
  redis.call('ZREM', K_LEASED, id)
  redis.call('HDEL', K_LEASES, id)
  if not blob then return {} end
  local records = cmsgpack.unpack(blob)
  redis.call('DECRBY', K_IN_FLIGHT, #records)
  return records
end

local LOST_WORKER = 'lease expired: the worker holding the item stopped (killed, evicted or hung)'

local function reclaim_expired(now, max_attempts, limit)
  local expired = redis.call('ZRANGEBYSCORE', K_LEASED, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    for _, record in ipairs(end_lease(id)) do
      retry_or_fail(record, LOST_WORKER, max_attempts)
    end
  end
end
"""

# ARGV: 1 ack lease id ('' for none), 2 items of it processed (the rest are handed back),
# 3 max attempts, 4 lease ms, 5 batch size (0: only ack), 6 expired leases reclaimed at most,
# 7 number of failures, then (index, error) pairs of the failures (index 1-based).
# Returns {acked, lease id, pending, in flight, failed, state, ms to next expiry, item, attempts, ...}.
_LEASE_SCRIPT = (
    _LUA_PRELUDE
    + """
local max_attempts, lease_ms, batch = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local acked = 0
if ARGV[1] ~= '' and redis.call('ZSCORE', K_LEASED, ARGV[1]) then
  acked = 1
  local failures = {}
  for i = 1, tonumber(ARGV[7]) do
    failures[tonumber(ARGV[6 + 2 * i])] = ARGV[7 + 2 * i]
  end
  local records = end_lease(ARGV[1])
  local processed, done = tonumber(ARGV[2]), 0
  for i = 1, processed do
    if failures[i] then retry_or_fail(records[i], failures[i], max_attempts) else done = done + 1 end
  end
  if done > 0 then redis.call('INCRBY', K_DONE, done) end
  for i = #records, processed + 1, -1 do
    local r = records[i]
    redis.call('LPUSH', K_RETRY, cmsgpack.pack({r[1], r[2] - 1, r[3]}))
  end
end

local now = now_ms()
reclaim_expired(now, max_attempts, tonumber(ARGV[6]))

local lease_id, records = 0, {}
if batch > 0 then
  local again = redis.call('LPOP', K_RETRY, batch)
  if again then
    for _, blob in ipairs(again) do
      local r = cmsgpack.unpack(blob)
      records[#records + 1] = {r[1], r[2] + 1, r[3]}
    end
  end
  if #records < batch then
    local fresh = redis.call('LPOP', K_PENDING, batch - #records)
    if fresh then
      for _, item in ipairs(fresh) do records[#records + 1] = {item, 1, ''} end
    end
  end
  if #records > 0 then
    lease_id = redis.call('INCR', K_NEXT_LEASE)
    redis.call('HSET', K_LEASES, lease_id, cmsgpack.pack(records))
    redis.call('ZADD', K_LEASED, now + lease_ms, lease_id)
    redis.call('INCRBY', K_IN_FLIGHT, #records)
  end
end

local next_expiry = -1
local first = redis.call('ZRANGE', K_LEASED, 0, 0, 'WITHSCORES')
if first[2] then next_expiry = math.max(tonumber(first[2]) - now, 0) end
local reply = {
  acked,
  lease_id,
  redis.call('LLEN', K_PENDING) + redis.call('LLEN', K_RETRY),
  tonumber(redis.call('GET', K_IN_FLIGHT) or '0'),
  redis.call('LLEN', K_FAILED),
  redis.call('GET', K_STATE) or '',
  next_expiry,
}
for _, r in ipairs(records) do
  reply[#reply + 1] = r[1]
  reply[#reply + 1] = r[2]
end
return reply
"""
)

# ARGV: 1 lease ms, 2 lease id. Returns 1 when the lease was extended, 0 when it was lost.
_EXTEND_SCRIPT = (
    _LUA_PRELUDE
    + """
if not redis.call('ZSCORE', K_LEASED, ARGV[2]) then return 0 end
redis.call('ZADD', K_LEASED, 'XX', now_ms() + tonumber(ARGV[1]), ARGV[2])
return 1
"""
)

# Moves every failed item back to the tail of the queue with fresh attempts. Returns the count.
_REQUEUE_FAILED_SCRIPT = (
    _LUA_PRELUDE
    + """
local moved = 0
while true do
  local items = redis.call('LPOP', K_FAILED, 1000)
  if not items then break end
  redis.call('RPUSH', K_PENDING, unpack(items))
  moved = moved + #items
end
redis.call('DEL', K_FAILED_ERRORS)
return moved
"""
)

# Seeding is recorded in the hash {Q}:seed (digest of the whole item list, total, pushed) so that
# a seed Job retried by Kubernetes resumes where it stopped instead of pushing items twice.
# KEYS: pending, state, seed. ARGV: digest, total.
# Returns {verdict, pushed, total}: 'start', 'resume', 'sealed' (other items and the queue is
# sealed) or 'busy' (another, unfinished seed of other items).
_SEED_BEGIN_SCRIPT = """
local digest, total = ARGV[1], tonumber(ARGV[2])
local recorded = redis.call('HMGET', KEYS[3], 'digest', 'pushed', 'total')
if recorded[1] == digest then
  return {'resume', tonumber(recorded[2]), tonumber(recorded[3])}
end
if recorded[1] and tonumber(recorded[2]) < tonumber(recorded[3]) then
  return {'busy', tonumber(recorded[2]), tonumber(recorded[3])}
end
if redis.call('GET', KEYS[2]) == 'sealed' then return {'sealed', 0, total} end
redis.call('HSET', KEYS[3], 'digest', digest, 'pushed', 0, 'total', total)
redis.call('SET', KEYS[2], 'open')
return {'start', 0, total}
"""

# KEYS: pending, state, seed. ARGV: digest, offset, items... Pushes only if the recorded progress
# is still `offset`, so a batch retried after a lost reply is never pushed twice.
_SEED_PUSH_SCRIPT = """
local recorded = redis.call('HMGET', KEYS[3], 'digest', 'pushed')
if recorded[1] ~= ARGV[1] then return redis.error_reply('SEEDCONFLICT another seed took over') end
if tonumber(recorded[2]) ~= tonumber(ARGV[2]) then return tonumber(recorded[2]) end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
return redis.call('HINCRBY', KEYS[3], 'pushed', #ARGV - 2)
"""


@dataclass(frozen=True)
class Lease:
    """A batch of items held by this worker until acknowledged or until its deadline."""

    lease_id: int
    items: list[bytes]
    attempts: list[int]  # 1 for an item's first run


@dataclass(frozen=True)
class QueueView:
    """What the queue looked like when work was last asked for: tells a worker to wait or exit."""

    pending: int
    in_flight: int
    failed: int
    state: bytes | None  # None for a list filled by hand, with no end-of-input marker
    next_expiry_seconds: float | None  # until the first lease held anywhere may be reclaimed


@dataclass
class Ack:
    """The result of a lease: the first `processed` items ran, of which `failures` failed.

    Items after `processed` did not run (the worker is stopping) and go back to the queue without
    using up an attempt.
    """

    lease_id: int
    processed: int = 0
    failures: dict[int, str] = field(default_factory=dict)  # index in the batch -> error


@dataclass(frozen=True)
class QueueStatus:
    pending: int
    in_flight: int
    done: int
    failed: int
    sealed: bool
    state: str  # "open", "sealed" or "none" (a list filled by hand)

    def as_dict(self) -> dict[str, int | bool | str]:
        return {
            "pending": self.pending,
            "in_flight": self.in_flight,
            "done": self.done,
            "failed": self.failed,
            "sealed": self.sealed,
            "state": self.state,
        }


@dataclass(frozen=True)
class SeedResult:
    pushed: int  # items pushed by this run
    total: int
    already_seeded: bool  # an earlier run had pushed them all


def validate_queue_name(name: str) -> str:
    if not name:
        raise UsageError("no queue name given (--queue or QUEUE_NAME)")
    if "{" in name or "}" in name:
        raise UsageError(f"queue name {name!r} must not contain braces: they select Redis Cluster slots")
    return name


def _retries_for(seconds: float) -> int:
    """How many exponential-backoff retries add up to at least `seconds` of waiting."""
    retries, waited, delay = 0, 0.0, RETRY_BACKOFF_BASE
    while waited < seconds:
        waited += min(delay, RETRY_BACKOFF_CAP)
        delay *= 2
        retries += 1
    return retries


def connect(url: str, password: str | None = None, timeout: float = DEFAULT_CONNECT_SECONDS) -> redis.Redis:
    """A client checked with a PING, retrying an unreachable server for about `timeout` seconds.

    The first contact is retried by hand so that refused credentials fail at once (redis-py
    counts them as connection errors and would retry them). The client itself then retries lost
    connections for as long: that covers a Redis restart mid-run, including its LOADING phase
    while it replays the append-only file; the scripts are written so that a call retried after
    a lost reply does no harm.
    """
    credentials = {"password": password} if password else {}
    retry = Retry(ExponentialBackoff(cap=RETRY_BACKOFF_CAP, base=RETRY_BACKOFF_BASE), _retries_for(timeout))
    try:
        client = redis.Redis.from_url(
            url,
            **credentials,
            socket_connect_timeout=5,
            socket_timeout=30,
            retry=retry,
            retry_on_error=[redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError],
        )
        probe = redis.Redis.from_url(
            url, **credentials, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
        )
    except ValueError as error:
        raise UsageError(f"bad Redis URL {url!r}: {error}") from None
    _first_contact(probe, _describe(url), timeout, refused_hint=not password and not urlsplit(url).password)
    probe.close()
    return client


def _first_contact(probe: redis.Redis, location: str, timeout: float, refused_hint: bool) -> None:
    deadline = time.monotonic() + timeout
    delay = RETRY_BACKOFF_BASE
    announced = False  # a line at the first failure, so that the wait is not silent
    while True:
        try:
            probe.ping()
            return
        except redis.AuthenticationError as error:
            if refused_hint:
                raise JobWorkerError(
                    f"Redis at {location} requires a password: set {ENV_REDIS_PASSWORD}"
                ) from None
            raise JobWorkerError(f"Redis at {location} refused the credentials: {error}") from None
        except (redis.ConnectionError, redis.TimeoutError) as error:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobWorkerError(
                    f"cannot reach Redis at {location} after {timeout:g} s: {error}"
                ) from None
            if not announced:
                log.info(
                    "Redis at %s does not answer yet (%s): waiting up to %g s for it",
                    location,
                    error,
                    timeout,
                )
                announced = True
            log.debug("Redis at %s does not answer yet (%s); retrying in %.1f s", location, error, delay)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, RETRY_BACKOFF_CAP)
        except redis.ResponseError as error:
            raise JobWorkerError(f"Redis at {location} refused the connection: {error}") from None


def _describe(url: str) -> str:
    """host:port of a URL, without the credentials it may carry."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or 6379}"
    except ValueError:
        return "the given URL"


class RedisQueue:
    """One named work queue on a Redis server."""

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = validate_queue_name(name)
        self.keys = RedisKeys.for_queue(name)
        self._key_list = [
            self.keys.pending, self.keys.retry, self.keys.leased, self.keys.leases,
            self.keys.in_flight, self.keys.done, self.keys.failed, self.keys.failed_errors,
            self.keys.state, self.keys.next_lease,
        ]  # fmt: skip
        self._lease = client.register_script(_LEASE_SCRIPT)
        self._extend = client.register_script(_EXTEND_SCRIPT)
        self._requeue_failed = client.register_script(_REQUEUE_FAILED_SCRIPT)
        self._seed_begin = client.register_script(_SEED_BEGIN_SCRIPT)
        self._seed_push = client.register_script(_SEED_PUSH_SCRIPT)

    # --- checks ---------------------------------------------------------------------------------
    def check_type(self) -> None:
        """The name must hold a list, or nothing yet: anything else belongs to another program."""
        kind = self._call(self.client.type, self.keys.pending).decode()
        if kind not in ("list", "none"):
            raise JobWorkerError(f"key {self.name!r} holds a {kind}, not a list of work items")

    def warn_unless_noeviction(self) -> None:
        """Queue keys must never be evicted; managed services may hide CONFIG, which is fine."""
        try:
            policy = self.client.config_get("maxmemory-policy").get("maxmemory-policy")
        except redis.ResponseError:
            log.debug("cannot read maxmemory-policy (CONFIG is disabled); not checked")
            return
        if policy and policy != "noeviction":
            log.warning(
                "Redis maxmemory-policy is %s: under memory pressure it may evict queue keys and "
                "lose items; set it to noeviction",
                policy,
            )

    # --- workers --------------------------------------------------------------------------------
    def lease(
        self, ack: Ack | None, batch_size: int, lease_seconds: float, max_attempts: int
    ) -> tuple[Lease | None, QueueView, bool]:
        """Acknowledge the previous batch and lease the next in one call.

        Returns the new lease (None when there is no work now), the queue as the script saw it,
        and whether the acknowledgement found its lease (False: it had expired and was reclaimed,
        so its items will run again elsewhere).
        """
        args: list[bytes | str | int] = [
            ack.lease_id if ack else "",
            ack.processed if ack else 0,
            max_attempts,
            math.ceil(lease_seconds * 1000),
            batch_size,
            RECLAIM_LIMIT,
            len(ack.failures) if ack else 0,
        ]
        for index, error in ack.failures.items() if ack else ():
            args += [index + 1, error]
        reply = self._call(self._lease, keys=self._key_list, args=args)
        acked, lease_id, pending, in_flight, failed, state, next_expiry = reply[:7]
        view = QueueView(
            pending=pending,
            in_flight=in_flight,
            failed=failed,
            state=state or None,
            next_expiry_seconds=None if next_expiry < 0 else next_expiry / 1000,
        )
        lease = None
        if lease_id:
            lease = Lease(lease_id=lease_id, items=reply[7::2], attempts=reply[8::2])
        return lease, view, bool(acked) or ack is None

    def extend(self, lease_id: int, lease_seconds: float) -> bool:
        """Push a lease's deadline back; False when it was already lost."""
        return bool(
            self._call(self._extend, keys=self._key_list, args=[math.ceil(lease_seconds * 1000), lease_id])
        )

    # --- producers and operators ----------------------------------------------------------------
    def seed(
        self,
        items: Sequence[bytes],
        seal: bool = True,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SeedResult:
        """Push items at the tail, exactly once even when the same seed is run again."""
        digest = items_digest(items)
        seed_keys = [self.keys.pending, self.keys.state, self.keys.seed]
        verdict, pushed, total = self._call(self._seed_begin, keys=seed_keys, args=[digest, len(items)])
        verdict = verdict.decode()
        if verdict == "busy":
            raise JobWorkerError(
                f"queue {self.name!r} has an unfinished seed of other items ({pushed} of {total} pushed); "
                "run that seed again to finish it"
            )
        if verdict == "sealed":
            raise JobWorkerError(
                f"queue {self.name!r} is sealed: its workers may have finished, so new items would be missed"
            )
        already_seeded = verdict == "resume" and pushed == len(items)
        start = pushed
        while pushed < len(items):
            batch = items[pushed : pushed + SEED_BATCH_SIZE]
            pushed = self._call(self._seed_push, keys=seed_keys, args=[digest, pushed, *batch])
            if on_progress:
                on_progress(pushed, len(items))
        if seal:
            self.seal()
        return SeedResult(pushed=pushed - start, total=len(items), already_seeded=already_seeded)

    def seal(self) -> None:
        """Mark the end of input: workers exit once the queue is empty and nothing is in flight."""
        self._call(self.client.set, self.keys.state, STATE_SEALED)

    def status(self) -> QueueStatus:
        """A consistent snapshot of the counts (one MULTI transaction)."""

        def snapshot() -> list:
            pipe = self.client.pipeline(transaction=True)
            pipe.llen(self.keys.pending)
            pipe.llen(self.keys.retry)
            pipe.get(self.keys.in_flight)
            pipe.get(self.keys.done)
            pipe.llen(self.keys.failed)
            pipe.get(self.keys.state)
            return pipe.execute()

        pending, retry, in_flight, done, failed, state = self._call(snapshot)
        state_name = (state or b"none").decode()
        return QueueStatus(
            pending=pending + retry,
            in_flight=int(in_flight or 0),
            done=int(done or 0),
            failed=failed,
            sealed=state == STATE_SEALED,
            state=state_name,
        )

    def failed_items(self, limit: int = 100) -> list[tuple[bytes, str]]:
        """The first failed items with their last errors."""
        items = self._call(self.client.lrange, self.keys.failed, 0, limit - 1)
        errors = self._call(self.client.lrange, self.keys.failed_errors, 0, limit - 1)
        return [
            (item, error.decode("utf-8", errors="replace"))
            for item, error in zip(items, errors, strict=False)
        ]

    def requeue_failed(self) -> int:
        """Put failed items back at the tail of the queue with all their attempts."""
        return self._call(self._requeue_failed, keys=self._key_list, args=[])

    def _call(self, function: Callable, *args: object, **kwargs: object):
        """Run one Redis call, turning the errors a user can fix into one-line messages."""
        try:
            return function(*args, **kwargs)
        except redis.AuthenticationError as error:
            raise JobWorkerError(f"Redis refused the credentials: {error}") from None
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise JobWorkerError(f"lost the connection to Redis and could not get it back: {error}") from None
        except redis.ResponseError as error:
            if str(error).startswith("WRONGTYPE"):
                raise JobWorkerError(
                    f"a key of queue {self.name!r} holds the wrong type of value: {error}"
                ) from None
            raise
