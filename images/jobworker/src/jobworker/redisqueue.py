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

What a lost worker costs. An attempt is charged to an item when a run of it fails (the handler
raised, the program exited non-zero) and when its worker is lost while it was running it, or could
have been as far as Redis can know; after --max-attempts charges the item goes to {Q}:failed. The
items of a lost lease that were not running are not charged: they go back to the front of the
queue, in their order. To tell them apart, a lease records where its worker is:

- its position lo: the worker has finished every item before lo. It starts at 0 and only rises:
  the heartbeat reports it every third of the lease, and the reports below raise it too.
- its stride s, fixed when the lease is taken: the worker starts no item at lo + s or beyond before
  a report raising lo has been answered. A command uses s = 1 (one round trip per item, nothing
  next to starting a process); a handler picks s from its own speed, so that its reports cost
  about one round trip per fine.POSITION_REPORT_SECONDS of work; for fast handlers s covers the whole
  batch and they report nothing at all. A worker's first handler lease holds one item, to time it.
- on SIGTERM the worker starts nothing after its current item, and its heartbeat says so at once:
  Redis hands the items after it back, uncharged, and the lease then ends at that item.

When a lease expires, the items that could have been running are its candidates, the items from lo
to lo + s - 1. The ones before lo (finished but not acknowledged) and after the candidates (never
started) go back uncharged. One candidate (a command, a one-item lease, a slow handler, a worker
stopped by SIGTERM) is charged an attempt. Several (a fast handler's batch) cannot be told apart,
so none is charged yet: they go back, marked to be leased one per lease from then on, so that a
later loss names its item, and they share one debt of one attempt. The first of them whose own
lease is lost pays it (its own run and the debt: two attempts); the others no longer owe it, and
once they have all run again it is dropped. So a lost worker costs at most one attempt in all, and
a poison item that kills every worker running it is failed after exactly N runs for N >= 2 (its
first, in a batch, is the debt). With --max-attempts 1 it runs twice when its first run was in a
fast handler's batch: which item that batch lost its worker to is known only after the second.
(If another worker running one of the same candidates alone is lost first, that one pays the
debt, which it could owe as well as far as Redis can tell, and the poison item runs once more.)

Why this holds when a worker dies at any instant, including between two Redis calls:
- Each script checks its arguments and the lease before it changes anything, and runs atomically:
  a worker that dies between two calls leaves the queue as its last call left it. Every item is
  in exactly one place at any time.
- The worker writes its position before it checks for a stop, and both before it starts an item.
  So the position the heartbeat reads (and reports) is never past an item that may be running,
  and after a stop request nothing past it will start: lo never passes the running item, and an
  item that may be running is always a candidate.
- Dead after a lease call ran but before its reply arrived: the lease has lo = 0. Its first item
  is a candidate though it never ran; it could have, for all Redis knows.
- Dead between a report and its item: the item is a candidate, as it could have been running.
- Dead after the last item, before the acknowledgement: the acknowledgement either ran (nothing
  is charged) or not (the last item is a candidate; alone, it is charged: it could have been
  running).
- The heartbeat's reports and the worker's acknowledgement come from two threads: a report that
  finds the lease gone changes nothing, and lo only rises, so a late report never moves it back.
- A worker that hangs instead of dying loses its lease the same way; its late acknowledgement
  finds no lease and its items run again elsewhere (at least once, as before).
"""

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.client import PubSub
from redis.retry import Retry

from jobworker.constants import (
    DEFAULT_CONNECT_SECONDS,
    ENV_REDIS_PASSWORD,
    STATE_SEALED,
    RedisKeys,
)
from jobworker.errors import JobWorkerError, UsageError
from jobworker.items import items_digest
from jobworker.logs import mask_url, url_problem
from jobworker.queues import DEFAULT_SEED, Retrying, SeedOptions, SeedResult

log = logging.getLogger(__name__)

RETRY_BACKOFF_BASE = 0.1
RETRY_BACKOFF_CAP = 2.0
RECLAIM_LIMIT = 100  # expired leases reclaimed per call, so that one call never runs long
PROBE_SECONDS = 5.0  # the first contact's connect and PING, each attempt, at most
SEED_BATCH_SIZE = 1000  # items pushed per round trip by `jobworker seed`
RETRY_SCANNED = 1000  # `jobworker status` looks this far into the retry list for charged items

# What {Q}:failed:errors and `jobworker status` say of an item charged for a lost worker.
LOST_WORKER = "worker lost while running it (lease expired: killed, evicted or hung)"

# Helpers shared by the scripts. A record is {item, attempts, last error, debt, alone}: attempts
# counts the attempts charged so far, plus one while the item is leased (what this run counts as if
# it fails); debt is the id of a lost lease whose debt the item shares, 0 for none; alone is 1 once
# the item was a candidate of a lost lease: it is leased by itself from then on. Records written by
# earlier versions have only the first three fields, which reads as no debt and not alone.
_LUA_PRELUDE = (
    """
local K_PENDING, K_RETRY, K_LEASED, K_LEASES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_IN_FLIGHT, K_DONE, K_FAILED, K_FAILED_ERRORS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_STATE, K_NEXT_LEASE, K_PROGRESS, K_DEBTS = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local CHANGES = KEYS[13]  -- a Pub/Sub channel, not a key: see announce()
"""
    + f"local LOST_WORKER = '{LOST_WORKER}'\n"
    + """
-- What each key must hold (absent is fine): a script checks them all before it changes anything,
-- since Redis does not roll a script back when a command fails half-way (a key set by hand to
-- something else would leave an item in no place at all).
local KEY_TYPES = {'list', 'list', 'zset', 'hash', 'string', 'string', 'list', 'list', 'string',
  'string', 'hash', 'hash'}
local COUNTERS = {[5] = true, [6] = true, [10] = true}
local function check_keys()
  for i, want in ipairs(KEY_TYPES) do
    local found = redis.call('TYPE', KEYS[i])['ok']
    if found ~= 'none' and found ~= want then
      return 'ERR jobworker: key ' .. KEYS[i] .. ' holds a ' .. found .. ', not a ' .. want
    end
    if COUNTERS[i] and found == 'string' and not string.match(redis.call('GET', KEYS[i]), '^%-?%d+$') then
      return 'ERR jobworker: key ' .. KEYS[i] .. ' holds something other than a count'
    end
  end
  local state = redis.call('GET', K_STATE)
  if state and state ~= 'open' and state ~= 'sealed' then
    return 'ERR jobworker: key ' .. K_STATE .. ' holds something other than open or sealed'
  end
  return nil
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- True when the record has attempts left (the caller puts it back), false once it is failed.
local function retry_or_fail(record, err, max_attempts)
  if record[2] >= max_attempts then
    redis.call('RPUSH', K_FAILED, record[1])
    redis.call('RPUSH', K_FAILED_ERRORS, err)
    return false
  end
  record[3] = err
  return true
end

-- The record ran again without losing its worker: one candidate fewer that may pay its debt.
local function settle_debt(record)
  local debt = record[4]
  if debt and debt ~= 0 then
    if redis.call('HINCRBY', K_DEBTS, debt, -1) <= 0 then redis.call('HDEL', K_DEBTS, debt) end
    record[4] = 0
  end
end

-- Records back at the head of the retry list, in their order, ahead of everything else.
local function push_front(records)
  for i = #records, 1, -1 do redis.call('LPUSH', K_RETRY, cmsgpack.pack(records[i])) end
end

-- The lease's position report: lo (items before it are finished) and stride (0: the whole lease).
local function progress_of(id)
  local saved = redis.call('HGET', K_PROGRESS, id)
  if not saved then return 0, 0 end
  local lo, stride = string.match(saved, '^(%d+) (%d+)$')
  return tonumber(lo), tonumber(stride)
end

local function end_lease(id)
  local blob = redis.call('HGET', K_LEASES, id)
  redis.call('ZREM', K_LEASED, id)
  redis.call('HDEL', K_LEASES, id)
  redis.call('HDEL', K_PROGRESS, id)
  if not blob then return {} end
  local records = cmsgpack.unpack(blob)
  redis.call('DECRBY', K_IN_FLIGHT, #records)
  return records
end

-- A lease whose worker was lost: charge the item that was running if it is known, make the
-- candidates share a debt if it is not, and put back the rest uncharged (see the module docstring).
local function reclaim(id, max_attempts)
  local lo, stride = progress_of(id)
  local records = end_lease(id)
  local n = #records
  if n == 0 then return end
  if stride == 0 then stride = n end
  local first = math.min(lo + 1, n)
  local last = math.min(lo + stride, n)
  local back = {}
  for i = 1, n do
    local r = records[i]
    if i < first or i > last then
      r[2] = r[2] - 1
      back[#back + 1] = r
    elseif first == last then
      local debt = r[4]
      if debt and debt ~= 0 then
        if redis.call('HEXISTS', K_DEBTS, debt) == 1 then
          r[2] = r[2] + 1
          redis.call('HDEL', K_DEBTS, debt)
        end
        r[4] = 0
      end
      r[5] = 1
      if retry_or_fail(r, LOST_WORKER, max_attempts) then back[#back + 1] = r end
    else
      settle_debt(r)
      r[2], r[4], r[5] = r[2] - 1, tonumber(id), 1
      back[#back + 1] = r
    end
  end
  if last > first then redis.call('HSET', K_DEBTS, id, last - first + 1) end
  push_front(back)
end

local function reclaim_expired(now, max_attempts, limit)
  local expired = redis.call('ZRANGEBYSCORE', K_LEASED, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do reclaim(id, max_attempts) end
  return #expired
end

-- Tells idle workers (subscribed while they wait) that a lease ended or items came back: the
-- queue may be finished, or have work again. Cheap when nobody listens.
local function announce()
  redis.call('PUBLISH', CHANGES, '1')
end
"""
)

# ARGV: 1 ack lease id ('' for none), 2 items of it processed (the rest are handed back),
# 3 max attempts, 4 lease ms, 5 batch size (0: only ack), 6 expired leases reclaimed at most,
# 7 stride of the new lease (0: the whole lease; see the module docstring), 8 number of failures,
# then (index, error) pairs of the failures (index 1-based).
# Returns {acked, lease id, pending, in flight, failed, state, ms to next expiry, lease counter, item,
# attempts, ...}; the lease counter is the last lease id given out, which only ever rises while the
# queue keeps its state (see FineWorker: a worker that held a higher one knows the state was lost).
_LEASE_SCRIPT = (
    _LUA_PRELUDE
    + """
local refused = check_keys()
if refused then return redis.error_reply(refused) end
local max_attempts, lease_ms, batch = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local processed, limit, stride = tonumber(ARGV[2]), tonumber(ARGV[6]), tonumber(ARGV[7])
local failure_count = tonumber(ARGV[8])
if not (max_attempts and lease_ms and batch and processed and limit and stride and failure_count) then
  return redis.error_reply('ERR jobworker: malformed lease arguments')
end
local failures = {}
for i = 1, failure_count do
  local index = tonumber(ARGV[7 + 2 * i])
  if not index or ARGV[8 + 2 * i] == nil then
    return redis.error_reply('ERR jobworker: malformed failure list')
  end
  failures[index] = ARGV[8 + 2 * i]
end

local acked = 0
if ARGV[1] ~= '' and redis.call('ZSCORE', K_LEASED, ARGV[1]) then
  acked = 1
  local records = end_lease(ARGV[1])
  processed = math.min(processed, #records)
  local done = 0
  for i = 1, processed do
    local r = records[i]
    if r[4] then settle_debt(r) end
    if failures[i] then
      if retry_or_fail(r, failures[i], max_attempts) then redis.call('RPUSH', K_RETRY, cmsgpack.pack(r)) end
    else
      done = done + 1
    end
  end
  if done > 0 then redis.call('INCRBY', K_DONE, done) end
  for i = #records, processed + 1, -1 do
    local r = records[i]
    r[2] = r[2] - 1
    redis.call('LPUSH', K_RETRY, cmsgpack.pack(r))
  end
end

local now = now_ms()
if reclaim_expired(now, max_attempts, limit) > 0 or acked == 1 then announce() end

local lease_id, records = 0, {}
if batch > 0 then
  -- The retry list first, in order; an item marked alone is leased by itself, and stops the batch.
  local full = false
  while #records < batch do
    local blob = redis.call('LPOP', K_RETRY)
    if not blob then break end
    local r = cmsgpack.unpack(blob)
    if r[5] == 1 and #records > 0 then
      redis.call('LPUSH', K_RETRY, blob)
      full = true
      break
    end
    r[2] = r[2] + 1
    records[#records + 1] = r
    if r[5] == 1 then
      full = true
      break
    end
  end
  if not full and #records < batch then
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
    if stride > 0 and stride < #records then redis.call('HSET', K_PROGRESS, lease_id, '0 ' .. stride) end
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
  tonumber(redis.call('GET', K_NEXT_LEASE) or '0'),
}
for _, r in ipairs(records) do
  reply[#reply + 1] = r[1]
  reply[#reply + 1] = r[2]
end
return reply
"""
)

# The heartbeat and the position reports. ARGV: 1 lease ms, 2 lease id, 3 position (0-based index
# of the item the worker may be running: every item before it is finished), 4 '1' when the worker
# will start no item after it (SIGTERM): those go back now, uncharged, and the lease ends at it.
# Returns 1 when the lease was extended, 0 when it was lost (nothing is changed then).
_REPORT_SCRIPT = (
    _LUA_PRELUDE
    + """
local refused = check_keys()
if refused then return redis.error_reply(refused) end
local lease_ms, position = tonumber(ARGV[1]), tonumber(ARGV[3])
if not (lease_ms and position and position >= 0) then
  return redis.error_reply('ERR jobworker: malformed report arguments')
end
local id = ARGV[2]
if not redis.call('ZSCORE', K_LEASED, id) then return 0 end
redis.call('ZADD', K_LEASED, 'XX', now_ms() + lease_ms, id)
local lo, stride = progress_of(id)
if position > lo then
  lo = position
  redis.call('HSET', K_PROGRESS, id, lo .. ' ' .. stride)
end
if ARGV[4] == '1' then
  local records = cmsgpack.unpack(redis.call('HGET', K_LEASES, id))
  if #records > lo + 1 then
    local kept, back = {}, {}
    for i = 1, #records do
      local r = records[i]
      if i <= lo + 1 then
        kept[#kept + 1] = r
      else
        r[2] = r[2] - 1
        back[#back + 1] = r
      end
    end
    redis.call('HSET', K_LEASES, id, cmsgpack.pack(kept))
    redis.call('DECRBY', K_IN_FLIGHT, #back)
    push_front(back)
    announce()
  end
end
return 1
"""
)

# Read only: the first records of the retry list that carry an error (failed, or charged for a
# lost worker), as item, attempts charged, error. ARGV: records scanned at most, records returned.
_RETRYING_SCRIPT = """
local found, wanted = {}, tonumber(ARGV[2])
for _, blob in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  local r = cmsgpack.unpack(blob)
  if r[3] and r[3] ~= '' then
    found[#found + 1] = r[1]
    found[#found + 1] = r[2]
    found[#found + 1] = r[3]
    if #found >= 3 * wanted then break end
  end
end
return found
"""

# Moves every failed item back to the tail of the queue with fresh attempts. Returns the count.
_REQUEUE_FAILED_SCRIPT = (
    _LUA_PRELUDE
    + """
local refused = check_keys()
if refused then return redis.error_reply(refused) end
local moved = 0
while true do
  local items = redis.call('LPOP', K_FAILED, 1000)
  if not items then break end
  redis.call('RPUSH', K_PENDING, unpack(items))
  moved = moved + #items
end
redis.call('DEL', K_FAILED_ERRORS)
if moved > 0 then announce() end
return moved
"""
)

# Checks what every key of the queue holds (see check_keys), changing nothing: before a status.
_CHECK_SCRIPT = (
    _LUA_PRELUDE
    + """
local refused = check_keys()
if refused then return redis.error_reply(refused) end
return 1
"""
)

# The seed scripts' keys: pending, state and seed must hold a list, a string and a hash.
_SEED_CHECK = """
for i, want in ipairs({'list', 'string', 'hash'}) do
  local found = redis.call('TYPE', KEYS[i])['ok']
  if found ~= 'none' and found ~= want then
    return redis.error_reply('ERR jobworker: key ' .. KEYS[i] .. ' holds a ' .. found .. ', not a ' .. want)
  end
end
"""

# Seeding is recorded in the hash {Q}:seed (digest of the whole item list, total, pushed) so that
# a seed Job retried by Kubernetes resumes where it stopped instead of pushing items twice.
# KEYS: pending, state, seed. ARGV: digest, total.
# Returns {verdict, pushed, total}: 'start', 'resume', 'sealed' (other items and the queue is
# sealed) or 'busy' (another, unfinished seed of other items).
_SEED_BEGIN_SCRIPT = (
    _SEED_CHECK
    + """
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
)

# KEYS: pending, state, seed. ARGV: digest, offset, items... Pushes only if the recorded progress
# is still `offset`, so a batch retried after a lost reply, or pushed meanwhile by a seed of the
# same items running beside this one, is never pushed twice. Returns {pushed in all, pushed now}.
_SEED_PUSH_SCRIPT = (
    _SEED_CHECK
    + """
local recorded = redis.call('HMGET', KEYS[3], 'digest', 'pushed')
if recorded[1] ~= ARGV[1] then return redis.error_reply('SEEDCONFLICT another seed took over') end
if tonumber(recorded[2]) ~= tonumber(ARGV[2]) then return {tonumber(recorded[2]), 0} end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
return {redis.call('HINCRBY', KEYS[3], 'pushed', #ARGV - 2), #ARGV - 2}
"""
)


class Lease(NamedTuple):
    """A batch of items held by this worker until acknowledged or until its deadline."""

    lease_id: int
    items: list[bytes]
    attempts: list[int]  # what this run counts as if it fails: 1 for an item's first run
    stride: int  # items started at most per position report (see the module docstring)


class QueueView(NamedTuple):
    """What the queue looked like when work was last asked for: tells a worker to wait or exit."""

    pending: int
    in_flight: int
    failed: int
    state: bytes | None  # None for a list filled by hand, with no end-of-input marker
    next_expiry_seconds: float | None  # until the first lease held anywhere may be reclaimed
    lease_counter: int = 0  # the last lease id given out on the queue (0: none yet)


@dataclass
class Ack:
    """The result of a lease: the first `processed` items ran, of which `failures` failed.

    Items after `processed` did not run (the worker is stopping) and go back to the queue without
    using up an attempt.
    """

    lease_id: int
    processed: int = 0
    failures: dict[int, str] = field(default_factory=dict)  # index in the batch -> error


class RedisStatus(NamedTuple):
    pending: int
    in_flight: int
    done: int
    failed: int
    sealed: bool
    state: str  # "open", "sealed" or "none" (a list filled by hand)

    def as_dict(self) -> dict[str, int | bool | str]:
        return self._asdict()

    def lines(self, queue: str) -> list[str]:
        return [
            f"queue {queue} ({self.state})",
            f"  pending    {self.pending}",
            f"  in flight  {self.in_flight}",
            f"  done       {self.done}",
            f"  failed     {self.failed}",
        ]


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
    # One attempt of the first contact waits this long for an answer: a port that accepts and never
    # answers (not Redis, or a proxy without a backend) is retried within the timeout, not for ever.
    attempt_seconds = min(max(timeout, 0.5), PROBE_SECONDS)
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
            url,
            **credentials,
            socket_connect_timeout=attempt_seconds,
            socket_timeout=attempt_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        has_password = bool(urlsplit(url).password)
    except ValueError as error:
        raise UsageError(f"bad Redis URL {mask_url(url)!r}: {url_problem(url, str(error))}") from None
    try:
        _first_contact(probe, _describe(url), timeout, refused_hint=not password and not has_password)
    finally:
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
        except (redis.RedisError, OverflowError, UnicodeError) as error:
            # An answer that is not Redis's (RabbitMQ's port answers with its protocol header):
            # waiting does not fix it.
            raise JobWorkerError(
                f"{location} does not answer as Redis does ({type(error).__name__}: {error}): "
                "is it the Redis server's address and port?"
            ) from None


def _describe(url: str) -> str:
    """host:port of a URL, without the credentials it may carry."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or 6379}"
    except ValueError:
        return "the given URL"


class QueueChanges:
    """Wakes a waiting worker as soon as a lease ends or items come back to the queue.

    Without it a worker with nothing to lease learns that the queue is finished (the last lease
    acknowledged) only at its next poll: up to POLL_MAX_SECONDS of every worker's pod time at the
    end of a Job. The scripts PUBLISH on the queue's channel when something a waiter cares about
    changed; the waiter still looks again after its timeout, so a missed message (one published
    before it subscribed, or a lost connection) costs a poll interval, never correctness.
    """

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub: PubSub | None = client.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.subscribe(channel)
        except redis.RedisError:
            self._pubsub = None  # waits fall back to sleeping; the next poll reports the problem

    def wait(self, seconds: float, sleep: Callable[[float], object]) -> None:
        """Return at the next change, or after `seconds` (by `sleep` without a subscription)."""
        if self._pubsub is None:
            sleep(seconds)
            return
        try:
            self._pubsub.get_message(timeout=seconds)
        except redis.RedisError:
            self.close()
            sleep(seconds)

    def close(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None


class RedisQueue:
    """One named work queue on a Redis server: the workers' lease protocol (fine.py), and the
    producers' and operators' WorkQueue (queues.py)."""

    seed_verb = "pushed"

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = validate_queue_name(name)
        self.keys = RedisKeys.for_queue(name)
        self._key_list = [
            self.keys.pending, self.keys.retry, self.keys.leased, self.keys.leases,
            self.keys.in_flight, self.keys.done, self.keys.failed, self.keys.failed_errors,
            self.keys.state, self.keys.next_lease, self.keys.progress, self.keys.debts,
            self.keys.changes,
        ]  # fmt: skip
        self._lease = client.register_script(_LEASE_SCRIPT)
        self._report = client.register_script(_REPORT_SCRIPT)
        self._retrying = client.register_script(_RETRYING_SCRIPT)
        self._requeue_failed = client.register_script(_REQUEUE_FAILED_SCRIPT)
        self._seed_begin = client.register_script(_SEED_BEGIN_SCRIPT)
        self._seed_push = client.register_script(_SEED_PUSH_SCRIPT)
        self._check = client.register_script(_CHECK_SCRIPT)

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
        self,
        ack: Ack | None,
        batch_size: int,
        lease_seconds: float,
        max_attempts: int,
        stride: int = 0,
    ) -> tuple[Lease | None, QueueView, bool]:
        """Acknowledge the previous batch and lease the next in one call.

        `stride`: this worker starts at most that many items of the new lease per position
        report (0: all of them without any); see the module docstring. Returns the new lease
        (None when there is no work now), the queue as the script saw it, and whether the
        acknowledgement found its lease (False: it had expired and was reclaimed, so its items
        will run again elsewhere).
        """
        args: list[bytes | str | int] = [
            ack.lease_id if ack else "",
            ack.processed if ack else 0,
            max_attempts,
            math.ceil(lease_seconds * 1000),
            batch_size,
            RECLAIM_LIMIT,
            stride,
            len(ack.failures) if ack else 0,
        ]
        for index, error in ack.failures.items() if ack else ():
            args += [index + 1, error]
        reply = self._call(self._lease, keys=self._key_list, args=args)
        acked, lease_id, pending, in_flight, failed, state, next_expiry, counter = reply[:8]
        view = QueueView(
            pending=pending,
            in_flight=in_flight,
            failed=failed,
            state=state or None,
            next_expiry_seconds=None if next_expiry < 0 else next_expiry / 1000,
            lease_counter=counter,
        )
        lease = None
        if lease_id:
            items = reply[8::2]
            size = len(items)
            lease = Lease(
                lease_id=lease_id,
                items=items,
                attempts=reply[9::2],
                stride=min(stride, size) if stride > 0 else size,
            )
        return lease, view, bool(acked) or ack is None

    def report(self, lease_id: int, position: int, lease_seconds: float, stopping: bool = False) -> bool:
        """Extend a lease and tell Redis that every item before `position` is finished; with
        `stopping`, that no item after it will start, so that those go back to the queue now.
        False when the lease was already lost (then nothing changed)."""
        return bool(
            self._call(
                self._report,
                keys=self._key_list,
                args=[math.ceil(lease_seconds * 1000), lease_id, position, 1 if stopping else 0],
            )
        )

    # --- producers and operators ----------------------------------------------------------------
    def seed(
        self,
        items: Sequence[bytes],
        options: SeedOptions = DEFAULT_SEED,
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
        pushed_here = 0  # what this run pushed: a seed beside it may push some of the batches
        while pushed < len(items):
            batch = items[pushed : pushed + SEED_BATCH_SIZE]
            pushed, added = self._call(self._seed_push, keys=seed_keys, args=[digest, pushed, *batch])
            pushed_here += added
            if on_progress:
                on_progress(pushed, len(items))
        if options.seal:
            self.seal()
        return SeedResult(
            pushed=pushed_here, total=len(items), already_seeded=already_seeded, sealed=options.seal
        )

    def seal(self) -> None:
        """Mark the end of input: workers exit once the queue is empty and nothing is in flight."""
        self._call(self.client.set, self.keys.state, STATE_SEALED)
        self._call(self.client.publish, self.keys.changes, 1)

    def changes(self) -> "QueueChanges":
        """A subscription to the queue's changes, for a worker that waits for work or the end."""
        return QueueChanges(self.client, self.keys.changes)

    def status(self) -> RedisStatus:
        """A consistent snapshot of the counts (one MULTI transaction), once every key is checked."""
        self._call(self._check, keys=self._key_list, args=[])

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
        return RedisStatus(
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

    def retrying(self, limit: int = 10) -> list[Retrying]:
        """Items waiting for another attempt after a failed run or a lost worker, first ones first."""
        found = self._call(self._retrying, keys=[self.keys.retry], args=[RETRY_SCANNED, limit])
        return [
            Retrying(item=item, attempts=attempts, error=error.decode("utf-8", errors="replace"))
            for item, attempts, error in zip(found[::3], found[1::3], found[2::3], strict=True)
        ]

    def requeue_failed(self) -> int:
        """Put failed items back at the tail of the queue with all their attempts."""
        return self._call(self._requeue_failed, keys=self._key_list, args=[])

    def close(self) -> None:
        self.client.close()

    def _call(self, function: Callable, *args: object, **kwargs: object):
        """Run one Redis call, turning the errors a user can fix into one-line messages."""
        try:
            return function(*args, **kwargs)
        except redis.AuthenticationError as error:
            raise JobWorkerError(f"Redis refused the credentials: {error}") from None
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise JobWorkerError(f"lost the connection to Redis and could not get it back: {error}") from None
        except redis.ResponseError as error:
            text = str(error).split(" script: ", 1)[0]  # Redis appends the script's sha and line
            if "jobworker: " in text:
                raise JobWorkerError(
                    f"queue {self.name!r} cannot be used as it is: {text.split('jobworker: ', 1)[1]} "
                    "(set by hand, or by another program?); nothing was changed"
                ) from None
            if text.startswith("WRONGTYPE"):
                raise JobWorkerError(
                    f"a key of queue {self.name!r} holds the wrong type of value: {text}"
                ) from None
            raise JobWorkerError(f"Redis refused a command on queue {self.name!r}: {text}") from None
        except redis.RedisError as error:
            raise JobWorkerError(
                f"Redis answered something this worker cannot read: {type(error).__name__}: {error}"
            ) from None
