"""The fine-grained work queue against a real redis-server: order, bytes, end of input, failures,
crash recovery, SIGTERM, a Redis restart, and bad input.

Each test that uses a server runs on Debian 12's redis-server 7.0 and on the stand-in for the
redis chart's official image (Redis 8), see conftest.py.
"""

import collections
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from devkit.docs_protocol import drain_like_the_docs
from devkit.servers import RedisServer, free_port, wait_until
from jobworker.redisqueue import RedisQueue
from tests.support.handlers import read_records
from tests.support.processes import ReplacingJob, one_line_error, run_jobworker, start_jobworker

pytestmark = pytest.mark.broker_versions

FRUIT = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
RECORD = "tests.support.handlers:record"
LOST = "worker lost while running it (lease expired"
# The tests about lost workers shorten the lease, and only it: the lease is how long Redis waits
# before it presumes a silent worker dead, so it scales the waiting, not what a loss charges. The
# settings that decide what is charged (--max-attempts, --batch-size) keep their defaults.
SHORT_LEASE = ("--lease-seconds", "1")
# Per item: append the item and a newline to $OUT in one write, then, for b"poison...", kill the
# worker (the program's parent) as an item that crashes its pod would; then sleep $SLEEP_SECONDS.
RECORD_OR_DIE = [
    "sh",
    "-c",
    'printf "%s\\n" "$1" >> "$OUT"; case "$1" in poison*) kill -9 "$PPID";; esac; '
    '[ -z "$SLEEP_SECONDS" ] || sleep "$SLEEP_SECONDS"',
    "sh",
    "{item}",
]
# Appends the item (from stdin) and a newline to the file $OUT; one write per item.
APPEND_STDIN = [
    sys.executable,
    "-c",
    "import os,sys; d=sys.stdin.buffer.read(); "
    "f=os.open(os.environ['OUT'], os.O_WRONLY|os.O_APPEND|os.O_CREAT); os.write(f, d+b'\\n')",
]


def status(env: dict[str, str], queue: str) -> dict:
    result = run_jobworker(["status", "--queue", queue, "--json"], env)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def seed(env: dict[str, str], queue: str, *items: str, extra: tuple[str, ...] = ()) -> None:
    result = run_jobworker(["seed", "--queue", queue, *extra, *items], env)
    assert result.returncode == 0, result.stderr.decode()


def fine(env: dict[str, str], queue: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_jobworker(["fine", "--queue", queue, *args], env, timeout=timeout)


def the_queue(server: RedisServer, name: str) -> RedisQueue:
    return RedisQueue(server.client(), name)


# --- order, bytes, duplicates ----------------------------------------------------------------------
def test_items_run_in_the_order_they_were_pushed(redis_env, tmp_path):
    seed(redis_env, "fruit", *FRUIT)
    out = tmp_path / "out"
    result = fine({**redis_env, "OUT": str(out)}, "fruit", "--", *APPEND_STDIN)
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_text().split() == FRUIT
    assert status(redis_env, "fruit") == {
        "queue": "fruit",
        "pending": 0,
        "in_flight": 0,
        "done": 10,
        "failed": 0,
        "sealed": True,
        "state": "sealed",
    }


def test_batches_keep_the_order_too(redis_env, tmp_path):
    items = [f"item-{n:04d}" for n in range(1000)]
    (tmp_path / "items.txt").write_text("\n".join(items) + "\n")
    seed(redis_env, "ordered", extra=("--file", str(tmp_path / "items.txt")))
    record = tmp_path / "record"
    result = fine(
        {**redis_env, "RECORD_FILE": str(record)}, "ordered", "--handler", RECORD, "--batch-size", "7"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert read_records(record) == [item.encode() for item in items]


def test_items_pushed_by_hand_with_redis_cli_are_processed(redis_server, redis_env, tmp_path):
    subprocess.run(
        [
            "redis-cli",
            "-p",
            str(redis_server.port),
            "--no-auth-warning",
            "-a",
            redis_server.password,
            "rpush",
            "job2",
            "apple",
            "banana",
            "cherry",
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "out"
    result = fine({**redis_env, "OUT": str(out)}, "job2", "--", *APPEND_STDIN)
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_text().split() == ["apple", "banana", "cherry"]


def test_any_bytes_and_duplicates_are_separate_work(redis_server, redis_env, tmp_path):
    items = [b"\x00\xff binary", b"same", "ünïcødé\nwith a newline".encode(), b"same", b"", b"same"]
    the_queue(redis_server, "bytes").seed(items)
    record = tmp_path / "record"
    result = fine({**redis_env, "RECORD_FILE": str(record)}, "bytes", "--handler", RECORD)
    assert result.returncode == 0, result.stderr.decode()
    assert read_records(record) == items
    assert status(redis_env, "bytes")["done"] == len(items)


@pytest.mark.parametrize(
    ("delivery_args", "command"),
    [
        ((), ["sh", "-c", 'cat > "$OUT"']),
        (("--deliver", "file"), ["cp", "{item_file}", "{out}"]),
        ((), ["sh", "-c", 'printf %s "$1" > "$OUT"', "sh", "{item}"]),
        (("--deliver", "env"), ["sh", "-c", 'printf %s "$WORK_ITEM" > "$OUT"']),
    ],
    ids=["stdin", "file", "arg", "env"],
)
def test_each_delivery_mode_hands_the_item_over(redis_env, tmp_path, delivery_args, command):
    seed(redis_env, "deliver", "a b  c*")
    out = tmp_path / "out"
    command = [part.replace("{out}", str(out)) for part in command]
    result = fine({**redis_env, "OUT": str(out)}, "deliver", *delivery_args, "--", *command)
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_bytes() == b"a b  c*"


def test_an_item_with_a_nul_byte_cannot_be_an_argument_and_fails_clearly(redis_server, redis_env):
    the_queue(redis_server, "nul").seed([b"a\x00b"])
    result = fine(redis_env, "nul", "--max-attempts", "1", "--", "echo", "{item}")
    assert result.returncode == 3
    assert the_queue(redis_server, "nul").failed_items() == [
        (b"a\x00b", "item holds a NUL byte, which arg cannot pass")
    ]


def test_the_docs_rediswq_protocol_drains_a_seeded_queue(redis_server, redis_env):
    seed(redis_env, "job2", *FRUIT)
    seen: list[bytes] = []
    assert drain_like_the_docs(redis_server.client(), "job2", seen.append) == len(FRUIT)
    # The docs' helper pops from the tail: it runs the items in reverse.
    assert seen == [fruit.encode() for fruit in reversed(FRUIT)]


# --- end of input ----------------------------------------------------------------------------------
def test_workers_on_an_open_queue_wait_until_it_is_sealed(redis_env, tmp_path):
    seed(redis_env, "open", "one", "two", extra=("--no-seal",))
    record = tmp_path / "record"
    worker = start_jobworker(
        ["fine", "--queue", "open", "--handler", RECORD], {**redis_env, "RECORD_FILE": str(record)}
    )
    wait_until(lambda: len(read_records(record)) == 2, 30, "the first two items")
    time.sleep(1)
    assert worker.poll() is None, "the worker left an open queue"
    seed(redis_env, "open", "three", extra=("--no-seal",))
    wait_until(lambda: len(read_records(record)) == 3, 30, "the item pushed later")
    assert worker.poll() is None
    assert run_jobworker(["seal", "--queue", "open"], redis_env).returncode == 0
    assert worker.wait(30) == 0
    assert read_records(record) == [b"one", b"two", b"three"]


def test_workers_started_before_the_seeder_wait_for_it_with_wait_for_seal(redis_env, tmp_path):
    record = tmp_path / "record"
    env = {**redis_env, "RECORD_FILE": str(record), "WAIT_FOR_SEAL": "true"}
    workers = [start_jobworker(["fine", "--queue", "late", "--handler", RECORD], env) for _ in range(2)]
    time.sleep(1.5)
    assert [worker.poll() for worker in workers] == [None, None]
    seed(redis_env, "late", *FRUIT)
    assert [worker.wait(30) for worker in workers] == [0, 0]
    assert sorted(read_records(record)) == sorted(fruit.encode() for fruit in FRUIT)


def test_an_empty_list_filled_by_hand_is_finished_at_once(redis_env):
    started = time.monotonic()
    result = fine(redis_env, "nothing-here", "--", "true")
    assert result.returncode == 0, result.stderr.decode()
    assert time.monotonic() - started < 30
    assert b"filled by hand" in result.stderr


def test_an_open_queue_without_work_gives_up_after_wait(redis_env):
    seed(redis_env, "stalled", "x", extra=("--no-seal",))
    result = fine(redis_env, "stalled", "--wait", "1", "--", "true")
    assert result.returncode == 4
    assert b"no work came for 1 s" in result.stderr


def test_seeding_twice_pushes_nothing_twice(redis_env):
    seed(redis_env, "twice", *FRUIT)
    result = run_jobworker(["seed", "--queue", "twice", *FRUIT], redis_env)
    assert result.returncode == 0
    assert b"nothing pushed" in result.stderr
    assert status(redis_env, "twice")["pending"] == len(FRUIT)


def test_a_killed_seed_resumes_without_duplicates(redis_server, redis_env, tmp_path):
    total = 2_000_000
    items_file = tmp_path / "items.txt"
    items_file.write_bytes(b"".join(b"%d\n" % n for n in range(total)))
    seeder = start_jobworker(["seed", "--queue", "big", "--file", str(items_file)], redis_env)
    client = redis_server.client()
    wait_until(lambda: int(client.hget("{big}:seed", "pushed") or 0) > 0, 60, "the seed to start pushing")
    seeder.kill()
    seeder.wait()
    pushed_when_killed = int(client.hget("{big}:seed", "pushed"))
    assert 0 < pushed_when_killed < total, "the seed finished before it could be interrupted"
    assert client.get("{big}:state") == b"open"
    seed(redis_env, "big", extra=("--file", str(items_file)))
    assert client.llen("big") == total
    assert client.lrange("big", -3, -1) == [b"1999997", b"1999998", b"1999999"]
    assert client.lindex("big", pushed_when_killed) == b"%d" % pushed_when_killed


def test_workers_that_seed_first_push_the_items_once_and_share_them(redis_env, tmp_path):
    """The chart's pods: each runs the same seed in its worker, then leases. Started together,
    their seeds push every item once between them, and no worker finishes before all are in."""
    items = [f"item-{n:05d}" for n in range(5000)]
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps(items))
    record = tmp_path / "record"
    env = {**redis_env, "RECORD_FILE": str(record), "SEED_FILE": str(items_file), "WAIT_FOR_SEAL": "true"}
    workers = [start_jobworker(["fine", "--queue", "seeded", "--handler", RECORD], env) for _ in range(3)]
    logs = [worker.communicate(timeout=120)[1].decode() for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0], logs
    assert sorted(read_records(record)) == [item.encode() for item in items]
    pushed = [re.search(r"pushed (\d+) items|(nothing pushed)", log) for log in logs]
    assert all(pushed), logs
    assert sum(int(match[1] or 0) for match in pushed) == len(items), logs

    again = fine(env, "seeded", "--handler", RECORD)  # a retried pod: nothing twice
    assert again.returncode == 0, again.stderr.decode()
    assert b"already holds these 5000 items" in again.stderr
    assert len(read_records(record)) == len(items)


@pytest.mark.parametrize(
    ("seed_file", "message"),
    [("/no/such/file", "cannot read items file /no/such/file"), ("/dev/null", "/dev/null holds no items")],
)
def test_a_bad_seed_file_is_one_line_and_loses_nothing(redis_env, seed_file, message):
    seed(redis_env, "kept", "precious")
    result = fine(redis_env, "kept", "--seed-file", seed_file, "--", "true")
    assert result.returncode == 1
    assert message in one_line_error(result)
    assert status(redis_env, "kept")["pending"] == 1


def test_new_items_for_a_sealed_queue_are_refused(redis_env):
    seed(redis_env, "closed", "a")
    result = run_jobworker(["seed", "--queue", "closed", "b"], redis_env)
    assert result.returncode == 1
    assert b"is sealed" in result.stderr


def test_a_waiting_worker_listens_for_the_end_of_the_last_lease(redis_server, redis_env):
    """A worker with nothing to lease waits on the queue's channel, which the last
    acknowledgement announces, rather than learning of the end only at its next poll."""
    seed(redis_env, "tail", "slow-item")
    slow = ["sh", "-c", "cat >/dev/null; sleep 3"]
    holder = start_jobworker(["fine", "--queue", "tail", "--", *slow], redis_env)
    wait_until(lambda: status(redis_env, "tail")["in_flight"] == 1, 30, "the item to be leased")
    waiter = start_jobworker(["fine", "--queue", "tail", "--", "cat"], redis_env)
    client = redis_server.client()
    channel = the_queue(redis_server, "tail").keys.changes
    wait_until(lambda: dict(client.pubsub_numsub(channel))[channel.encode()] == 1, 30, "the waiter to listen")
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(channel)
    assert holder.wait(60) == 0
    assert waiter.wait(60) == 0
    announced = [listener.get_message(timeout=1) for _ in range(3)]
    assert any(message and message["channel"] == channel.encode() for message in announced), announced
    assert dict(client.pubsub_numsub(channel))[channel.encode()] == 1, "a worker left its subscription open"
    listener.close()


# --- failures --------------------------------------------------------------------------------------
def test_failed_items_are_retried_then_listed_with_their_error(redis_server, redis_env, tmp_path):
    seed(redis_env, "flaky", "good-1", "bad-1", "good-2")
    record = tmp_path / "record"
    result = fine(
        {**redis_env, "RECORD_FILE": str(record)},
        "flaky",
        "--handler",
        "tests.support.handlers:fail_bad",
        "--max-attempts",
        "3",
        "--batch-size",
        "1",
    )
    assert result.returncode == 3, result.stderr.decode()
    assert result.stderr.count(b"item failed") == 3
    assert sorted(read_records(record)) == [b"good-1", b"good-2"]
    assert status(redis_env, "flaky") | {"queue": None} == {
        "queue": None,
        "pending": 0,
        "in_flight": 0,
        "done": 2,
        "failed": 1,
        "sealed": True,
        "state": "sealed",
    }
    assert the_queue(redis_server, "flaky").failed_items() == [(b"bad-1", "ValueError: refusing b'bad-1'")]
    text = run_jobworker(["status", "--queue", "flaky"], redis_env).stdout.decode()
    assert "bad-1: ValueError: refusing b'bad-1'" in text


def test_a_failing_program_is_recorded_with_its_last_words(redis_server, redis_env):
    seed(redis_env, "prog", "x")
    result = fine(redis_env, "prog", "--max-attempts", "2", "--", "sh", "-c", "echo 'disk full' >&2; exit 5")
    assert result.returncode == 3
    [(item, error)] = the_queue(redis_server, "prog").failed_items()
    assert (item, error) == (b"x", "exit status 5: disk full")


def test_an_item_that_fails_once_then_succeeds_is_done(redis_env, tmp_path):
    seed(redis_env, "second-time", "x")
    marker = tmp_path / "tried"
    result = fine(
        {**redis_env, "MARK": str(marker)},
        "second-time",
        "--",
        "sh",
        "-c",
        'if [ -e "$MARK" ]; then exit 0; fi; touch "$MARK"; exit 1',
    )
    assert result.returncode == 0, result.stderr.decode()
    assert status(redis_env, "second-time")["done"] == 1


def test_requeue_failed_puts_the_items_back(redis_env, tmp_path):
    seed(redis_env, "again", "bad-a", "ok")
    env = {**redis_env, "RECORD_FILE": str(tmp_path / "record")}
    assert (
        fine(env, "again", "--handler", "tests.support.handlers:fail_bad", "--max-attempts", "1").returncode
        == 3
    )
    result = run_jobworker(["requeue-failed", "--queue", "again"], redis_env)
    assert result.returncode == 0
    assert b"moved 1 failed items" in result.stderr
    assert status(redis_env, "again") | {"queue": None} == {
        "queue": None,
        "pending": 1,
        "in_flight": 0,
        "done": 1,
        "failed": 0,
        "sealed": True,
        "state": "sealed",
    }
    assert fine(env, "again", "--handler", RECORD).returncode == 0
    assert status(redis_env, "again")["done"] == 2


# --- crash recovery --------------------------------------------------------------------------------
def test_the_items_of_a_killed_worker_are_taken_over_after_the_lease(redis_env, tmp_path):
    seed(redis_env, "orphan", "only-item")
    out = tmp_path / "out"
    stuck = start_jobworker(
        ["fine", "--queue", "orphan", "--lease-seconds", "1", "--", "sleep", "600"],
        redis_env,
        start_new_session=True,
    )
    wait_until(
        lambda: status(redis_env, "orphan")["in_flight"] == 1, 30, "the first worker to lease the item"
    )
    os.killpg(stuck.pid, signal.SIGKILL)  # the worker and its program, as a container dies
    stuck.wait()
    result = fine({**redis_env, "OUT": str(out)}, "orphan", "--", *APPEND_STDIN)
    assert result.returncode == 0, result.stderr.decode()
    assert out.read_text().split() == ["only-item"]
    assert status(redis_env, "orphan")["done"] == 1


def test_a_long_item_keeps_its_lease(redis_env, tmp_path):
    seed(redis_env, "long", "slow-item")
    out = tmp_path / "out"
    env = {**redis_env, "OUT": str(out)}
    # A lease of 2 s renewed every 2/3 s outlives a 6 s item; not renewed, it would expire twice over.
    command = ["sh", "-c", 'sleep 6; cat >> "$OUT"; echo >> "$OUT"']
    first = start_jobworker(["fine", "--queue", "long", "--lease-seconds", "2", "--", *command], env)
    wait_until(lambda: status(redis_env, "long")["in_flight"] == 1, 30, "the item to be leased")
    second = start_jobworker(["fine", "--queue", "long", "--lease-seconds", "2", "--", *command], env)
    assert first.wait(60) == 0
    assert second.wait(60) == 0
    assert out.read_text().split() == ["slow-item"], "the lease expired while the item was running"
    assert b"lost" not in first.stderr.read() + second.stderr.read()


def test_chaos_random_sigkills_lose_nothing(redis_server, redis_env, tmp_path):
    """Workers are SIGKILLed at random while 4,000 items (some repeated) are processed, with the
    default attempts (3) and batch (500); only the lease is short (SHORT_LEASE says why)."""
    items = [f"item-{n:05d}".encode() for n in range(3600)] + [b"repeated"] * 400
    random.Random(7).shuffle(items)
    queue = the_queue(redis_server, "chaos")
    queue.seed(items)
    record = tmp_path / "record"
    env = {**redis_env, "RECORD_FILE": str(record), "SLEEP_SECONDS": "0.01"}
    args = ["fine", "--queue", "chaos", "--handler", "tests.support.handlers:slow_record", *SHORT_LEASE]

    def start() -> subprocess.Popen:
        return start_jobworker(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    chance = random.Random(11)
    workers = [start() for _ in range(4)]
    kills = 0
    while kills < 20:
        time.sleep(chance.uniform(0.2, 0.5))
        left = queue.status()
        assert left.pending + left.in_flight > 0, f"the queue drained after only {kills} kills"
        victim = chance.randrange(len(workers))
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        workers[victim] = start()
        kills += 1
    assert [worker.wait(120) for worker in workers] == [0, 0, 0, 0]

    processed = collections.Counter(read_records(record))
    expected = collections.Counter(items)
    assert not expected - processed, "items were lost"
    assert sum(processed.values()) >= len(items)
    assert status(redis_env, "chaos") | {"queue": None} == {
        "queue": None,
        "pending": 0,
        "in_flight": 0,
        "done": len(items),
        "failed": 0,
        "sealed": True,
        "state": "sealed",
    }
    client = redis_server.client()
    for key in ("leases", "progress", "debts"):
        assert client.hlen(f"{{chaos}}:{key}") == 0, key
    assert client.zcard("{chaos}:leased") == 0


# --- what a lost worker costs ----------------------------------------------------------------------
def recording(mode: str, tmp_path, handler: str = "record_or_die") -> tuple[list[str], dict, Callable]:
    """Worker arguments and environment that record each run of an item, and the runs so far.

    `handler`: a function of tests.support.handlers; in command mode, a program that does the same
    as record_or_die (an item starting with "poison" kills the worker)."""
    if mode == "handler":
        record = tmp_path / "record"
        return (
            ["--handler", f"tests.support.handlers:{handler}"],
            {"RECORD_FILE": str(record)},
            lambda: read_records(record),
        )
    out = tmp_path / "out"
    return ["--", *RECORD_OR_DIE], {"OUT": str(out)}, lambda: lines_of(out)


def lines_of(path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


@pytest.mark.parametrize("mode", ["handler", "command"])
def test_a_poison_item_alone_is_failed_after_max_attempts_runs(redis_server, redis_env, tmp_path, mode):
    """One item kills every worker that runs it, among 2,000 good ones; two workers, each replaced
    when it dies, as a Job replaces its pods; the default attempts (3) and batches (500 items for a
    handler, 1 for a command). Only the poison item is failed, after exactly 3 runs, though each
    handler batch it was in held hundreds of items that its worker never started."""
    good = [b"good-%04d" % n for n in range(2000)]
    items = [*good[:1250], b"poison", *good[1250:]]
    queue = the_queue(redis_server, "poison")
    queue.seed(items)
    args, env, runs = recording(mode, tmp_path)
    job = ReplacingJob(["fine", "--queue", "poison", *SHORT_LEASE, *args], {**redis_env, **env}, 2)
    assert job.wait(timeout=120) == [3, 3]
    ran = runs()
    assert ran.count(b"poison") == 3, "the poison item did not run exactly --max-attempts times"
    assert job.killed == 3
    assert not set(good) - set(ran), "good items never ran"
    assert [(item, error.startswith(LOST)) for item, error in queue.failed_items()] == [(b"poison", True)]
    assert status(redis_env, "poison") | {"queue": None} == {
        "queue": None,
        "pending": 0,
        "in_flight": 0,
        "done": 2000,
        "failed": 1,
        "sealed": True,
        "state": "sealed",
    }
    text = run_jobworker(["status", "--queue", "poison"], redis_env).stdout.decode()
    assert f"poison: {LOST}" in text
    client = redis_server.client()
    assert [client.hlen(f"{{poison}}:{key}") for key in ("leases", "progress", "debts")] == [0, 0, 0]


def test_status_names_the_items_charged_for_a_lost_worker(redis_server, redis_env):
    seed(redis_env, "charged", "hang", "next")
    worker = start_jobworker(
        ["fine", "--queue", "charged", *SHORT_LEASE, "--", "sleep", "600"], redis_env, start_new_session=True
    )
    wait_until(lambda: status(redis_env, "charged")["in_flight"] == 1, 30, "the item to be leased")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    queue = the_queue(redis_server, "charged")
    # What a worker asking for no item does: reclaim the leases that expired.
    wait_until(lambda: queue.lease(None, 0, 1, 3)[1].in_flight == 0, 10, "the lease to expire")
    text = run_jobworker(["status", "--queue", "charged"], redis_env).stdout.decode()
    assert f"  retrying (attempts charged so far: last error)\n    hang (1): {LOST}" in text
    assert "next (" not in text, "an item that did not run was listed as charged"


@pytest.mark.parametrize(
    ("mode", "settings"),
    [
        ("handler", ("1", "1", 1)),
        ("handler", ("7", "2", 2)),
        ("command", ("7", "1", 1)),
        # The one exception, documented: a lost batch of fast handler items cannot say which item
        # was running, so the poison item runs once more, alone, before one attempt is charged.
        ("handler", ("7", "1", 2)),
    ],
    ids=[
        "handler-batch1-attempts1",
        "handler-batch7-attempts2",
        "command-batch7-attempts1",
        "handler-batch7-attempts1",
    ],
)
def test_a_poison_item_runs_max_attempts_times_at_any_batch_size(
    redis_server, redis_env, tmp_path, mode, settings
):
    """(batch size, --max-attempts, runs of the poison item expected)"""
    batch, attempts, runs_expected = settings
    items = [b"item-%02d" % n for n in range(40)]
    items.insert(17, b"poison")
    queue = the_queue(redis_server, "sizes")
    queue.seed(items)
    args, env, runs = recording(mode, tmp_path)
    options = ["--batch-size", batch, "--max-attempts", attempts, *SHORT_LEASE]
    job = ReplacingJob(["fine", "--queue", "sizes", *options, *args], {**redis_env, **env}, 1)
    assert job.wait(timeout=60) == [3]
    assert runs().count(b"poison") == runs_expected
    assert [item for item, _ in queue.failed_items()] == [b"poison"]
    assert queue.status().done == 40


@pytest.mark.parametrize("mode", ["handler", "command"])
def test_random_sigkills_fail_no_item(redis_server, redis_env, tmp_path, mode):
    """3,000 items, 3 workers, 10 SIGKILLs at random moments, with the default attempts (3) and
    batches: every item is done and none is failed. Each loss charges at most one attempt, to an
    item that was running; before, a lost handler batch charged all of its 500 items, and a batch
    lost three times (taken again after each loss, as it goes back to the front) was failed whole."""
    items = [b"item-%04d" % n for n in range(3000)]
    queue = the_queue(redis_server, "random-kills")
    queue.seed(items)
    args, env, runs = recording(mode, tmp_path, handler="slow_record")
    env["SLEEP_SECONDS"] = "0.015"
    job = ReplacingJob(["fine", "--queue", "random-kills", *SHORT_LEASE, *args], {**redis_env, **env}, 3)
    chance = random.Random(13)
    for kills in range(10):
        time.sleep(chance.uniform(0.5, 1.5))  # a lost lease comes back after 1 s: some are lost again
        left = queue.status()
        assert left.pending + left.in_flight > 0, f"the queue drained after only {kills} kills"
        job.kill_one(chance)
    assert job.wait(timeout=120) == [0, 0, 0]
    assert not set(items) - set(runs()), "items never ran"
    assert queue.failed_items() == []
    assert status(redis_env, "random-kills")["done"] == 3000


def test_sigterm_past_the_grace_period_hands_a_handlers_item_back_uncharged(
    redis_server, redis_env, tmp_path
):
    """An in-process handler cannot be stopped: past --grace-seconds the worker hands back the item
    it runs (not charged: an eviction is not the item's fault, as with a command) and exits 143.
    The items it had not started go back at once, on SIGTERM. Three evictions in a row of the same
    item, at the default --max-attempts 3, leave it unfailed."""
    items = [b"item-%02d" % n for n in range(10)] + [b"hang"] + [b"item-%02d" % n for n in range(11, 21)]
    queue = the_queue(redis_server, "evicted")
    queue.seed(items)
    record = tmp_path / "record"
    env = {**redis_env, "RECORD_FILE": str(record)}
    handler = "tests.support.handlers:record_or_hang"
    args = ["fine", "--queue", "evicted", "--handler", handler, "--grace-seconds", "1"]
    for eviction in range(3):
        worker = start_jobworker(args, env)
        wait_until(lambda n=eviction: read_records(record).count(b"hang") == n + 1, 30, "the item to hang")
        worker.send_signal(signal.SIGTERM)
        if eviction == 0:
            wait_until(lambda: queue.status().pending == 10, 5, "the 10 items after it to go back")
        try:
            assert worker.wait(15) == 143
        finally:
            worker.kill()
        assert b"outlived the grace period" in worker.stderr.read()
        assert queue.status().in_flight == 0
    assert queue.failed_items() == []
    result = fine({**env}, "evicted", "--handler", RECORD)
    assert result.returncode == 0, result.stderr.decode()
    assert queue.status().done == 21


@pytest.mark.parametrize(
    ("mode", "options"),
    [("handler", ()), ("command", ("--batch-size", "5"))],
    ids=["handler", "command-batch5"],
)
def test_a_worker_killed_after_sigterm_charges_only_the_running_item(
    redis_server, redis_env, tmp_path, mode, options
):
    """SIGTERM, then SIGKILL before the grace period ends (a pod's terminationGracePeriodSeconds
    shorter than --grace-seconds, a node shut down): the items not started go back at once; at the
    lease's end only the item that was running is charged. Three times in a row: it is failed,
    nothing else is."""
    items = [b"item-%02d" % n for n in range(10)] + [b"hang"] + [b"item-%02d" % n for n in range(11, 21)]
    queue = the_queue(redis_server, "killed")
    queue.seed(items)
    if mode == "handler":
        args, env, runs = recording(mode, tmp_path, handler="record_or_hang")
    else:
        out = tmp_path / "out"
        hang = 'printf "%s\\n" "$1" >> "$OUT"; case "$1" in hang*) exec sleep 600;; esac'
        args, env = ["--", "sh", "-c", hang, "sh", "{item}"], {"OUT": str(out)}
        runs = lambda: lines_of(out)  # noqa: E731
    worker_args = ["fine", "--queue", "killed", *SHORT_LEASE, "--grace-seconds", "60", *options, *args]
    for loss in range(3):
        worker = start_jobworker(worker_args, {**redis_env, **env}, start_new_session=True)
        try:
            wait_until(lambda n=loss: runs().count(b"hang") == n + 1, 30, "the item to hang")
            worker.send_signal(signal.SIGTERM)
            if loss == 0:
                wait_until(lambda: queue.status().pending == 10, 5, "the 10 items after it to go back")
        finally:
            os.killpg(worker.pid, signal.SIGKILL)  # the worker and its program, as a container dies
            worker.wait()
    # The next worker that asks for work reclaims the expired lease, and then does the rest.
    result = fine({**redis_env, **env}, "killed", *SHORT_LEASE, *options, *args)
    assert result.returncode == 3, result.stderr.decode()
    assert [(item, error.startswith(LOST)) for item, error in queue.failed_items()] == [(b"hang", True)]
    assert queue.status().done == 20
    assert runs().count(b"hang") == 3


# --- SIGTERM and Redis restarts --------------------------------------------------------------------
def test_sigterm_hands_back_an_item_that_outlives_the_grace_period(redis_env, tmp_path):
    seed(redis_env, "term", "long-one", "next")
    worker = start_jobworker(
        ["fine", "--queue", "term", "--grace-seconds", "0.5", "--", "sleep", "600"], redis_env
    )
    wait_until(lambda: status(redis_env, "term")["in_flight"] == 1, 30, "the item to be leased")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 143
    assert b"outlived the grace period" in worker.stderr.read()
    assert status(redis_env, "term") | {"queue": None} == {
        "queue": None,
        "pending": 2,
        "in_flight": 0,
        "done": 0,
        "failed": 0,
        "sealed": True,
        "state": "sealed",
    }
    out = tmp_path / "out"
    assert fine({**redis_env, "OUT": str(out)}, "term", "--", *APPEND_STDIN).returncode == 0
    assert out.read_text().split() == ["long-one", "next"], "the handed-back item used up an attempt or moved"


def test_sigterm_lets_the_current_item_finish_within_the_grace_period(redis_env, tmp_path):
    seed(redis_env, "finish", "short", "not-started")
    out = tmp_path / "out"
    command = ["sh", "-c", 'sleep 2; cat >> "$OUT"']
    worker = start_jobworker(
        ["fine", "--queue", "finish", "--grace-seconds", "30", "--", *command], {**redis_env, "OUT": str(out)}
    )
    wait_until(lambda: status(redis_env, "finish")["in_flight"] == 1, 30, "the item to be leased")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 143
    assert out.read_text() == "short"
    assert status(redis_env, "finish") | {"queue": None} == {
        "queue": None,
        "pending": 1,
        "in_flight": 0,
        "done": 1,
        "failed": 0,
        "sealed": True,
        "state": "sealed",
    }


def test_a_redis_restart_mid_run_loses_nothing(redis_server, redis_env, tmp_path):
    items = [f"r-{n:04d}".encode() for n in range(3000)]
    the_queue(redis_server, "restart").seed(items)
    record = tmp_path / "record"
    env = {**redis_env, "RECORD_FILE": str(record), "SLEEP_SECONDS": "0.002"}
    args = [
        "fine",
        "--queue",
        "restart",
        "--handler",
        "tests.support.handlers:slow_record",
        "--batch-size",
        "10",
    ]
    workers = [start_jobworker(args, env) for _ in range(2)]
    wait_until(lambda: len(read_records(record)) > 300, 60, "some progress")
    redis_server.kill()
    time.sleep(1)
    redis_server.start()
    assert [worker.wait(180) for worker in workers] == [0, 0]
    assert not collections.Counter(items) - collections.Counter(read_records(record)), "items were lost"
    assert status(redis_env, "restart")["done"] == len(items)


# --- bad input -------------------------------------------------------------------------------------
def test_unreachable_redis_is_announced_then_one_error_after_bounded_retries():
    url = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = run_jobworker(
        ["fine", "--queue", "q", "--connect-timeout", "2", "--", "true"], {"REDIS_URL": url}
    )
    assert result.returncode == 1
    waiting, error = result.stderr.decode().strip().splitlines()
    assert "Redis at 127.0.0.1:" in waiting
    assert "does not answer yet" in waiting
    assert "waiting up to 2 s for it" in waiting
    assert "cannot reach Redis at 127.0.0.1:" in error
    assert time.monotonic() - started >= 2, "gave up without retrying"


def test_the_wait_for_redis_is_announced_at_its_start():
    """The line comes when the wait begins, not after the connect timeout's 60 s."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    worker = start_jobworker(["fine", "--queue", "q", "--", "true"], {"REDIS_URL": url})
    try:
        assert worker.stderr is not None
        ready_to_read, _, _ = select.select([worker.stderr], [], [], 20)
        assert ready_to_read, "nothing said within 20 s of a 60 s wait"
        assert b"waiting up to 60 s for it" in worker.stderr.readline()
    finally:
        worker.kill()
        worker.wait()


def test_a_wrong_password_is_one_line(redis_env):
    result = run_jobworker(["status", "--queue", "q"], {**redis_env, "REDIS_PASSWORD": "wrong"})
    assert result.returncode == 1
    assert "refused the credentials" in one_line_error(result)


def test_a_missing_password_is_one_line(redis_server):
    result = run_jobworker(["status", "--queue", "q"], {"REDIS_URL": redis_server.url})
    assert result.returncode == 1
    assert "requires a password: set REDIS_PASSWORD" in one_line_error(result)


def test_a_key_of_the_wrong_type_is_one_line(redis_server, redis_env):
    redis_server.client().hset("taken", "field", "value")
    result = fine(redis_env, "taken", "--", "true")
    assert result.returncode == 1
    assert "key 'taken' holds a hash, not a list of work items" in one_line_error(result)


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--handler", "no_such_module:run"], "cannot import handler module 'no_such_module'", 1),
        (["--handler", "jobworker.handlers:nothing"], "has no attribute 'nothing'", 1),
        (["--handler", "justamodule"], "is not of the form MODULE:FUNCTION", 2),
        ([], "no command given", 2),
        (["--"], "no command given", 2),
        (["--", "no-such-program-here"], "command not found: no-such-program-here", 1),
        (["--handler", "jobworker.handlers:noop", "--", "true"], "not both", 2),
        (["--deliver", "arg", "--", "echo"], "needs {item}", 2),
        (["--max-attempts", "0", "--", "true"], "'0' is not an integer from 1 to 1000", 2),
        (["--lease-seconds", "0", "--", "true"], "'0' is not a number from 0.1 to 86400", 2),
    ],
)
def test_bad_worker_options_are_one_line(redis_env, args, message, status):
    result = fine(redis_env, "q", *args)
    assert result.returncode == status
    assert message in one_line_error(result)


def test_a_bad_option_from_the_environment_names_the_variable(redis_env):
    result = fine({**redis_env, "MAX_ATTEMPTS": "many"}, "q", "--", "true")
    assert result.returncode == 2
    assert "'many' is not an integer from 1 to 1000 (--max-attempts / MAX_ATTEMPTS)" in one_line_error(result)


@pytest.mark.parametrize("name", ["", "with{brace}"])
def test_bad_queue_names_are_one_line(redis_env, name):
    result = run_jobworker(["status", "--queue", name], redis_env)
    assert result.returncode == 2
    one_line_error(result)


# --- operations ------------------------------------------------------------------------------------
def test_every_key_of_a_queue_is_in_one_cluster_slot(redis_server, redis_env):
    from redis.crc import key_slot  # noqa: PLC0415

    seed(redis_env, "slots", "a", "bad-b")
    fine(
        {**redis_env, "RECORD_FILE": os.devnull},
        "slots",
        "--handler",
        "tests.support.handlers:fail_bad",
        "--max-attempts",
        "1",
    )
    keys = redis_server.client().keys("*")
    assert len(keys) >= 5
    assert {key_slot(key) for key in keys} == {key_slot(b"slots")}


def test_a_server_that_may_evict_gets_a_warning(tmp_path, redis_image):
    with RedisServer(tmp_path, config=("--maxmemory-policy", "allkeys-lru"), image=redis_image) as server:
        seed({"REDIS_URL": server.url}, "evict", "a")
        result = fine({"REDIS_URL": server.url}, "evict", "--", "true")
    assert result.returncode == 0
    assert b"maxmemory-policy is allkeys-lru" in result.stderr


def test_json_logs_are_one_object_per_line(redis_env):
    seed(redis_env, "json", "a", "b")
    result = fine({**redis_env, "LOG_FORMAT": "json"}, "json", "--", "true")
    assert result.returncode == 0
    entries = [json.loads(line) for line in result.stderr.decode().splitlines()]
    assert [entry["item"] for entry in entries if entry["message"].startswith("item done")] == ["a", "b"]
    assert {"time", "level", "logger", "message"} <= set(entries[0])


def test_handler_mode_reports_progress_instead_of_a_line_per_item(redis_server, redis_env):
    the_queue(redis_server, "quiet").seed([b"%d" % n for n in range(20000)])
    result = fine(redis_env, "quiet", "--handler", "jobworker.handlers:noop")
    assert result.returncode == 0
    assert len(result.stderr.splitlines()) < 10
    assert status(redis_env, "quiet")["done"] == 20000


def test_a_seed_file_from_stdin_in_json(redis_env):
    result = run_jobworker(
        ["seed", "--queue", "stdin", "--file", "-", "--format", "json"],
        redis_env,
        stdin=json.dumps(["a", 2, "c d"]).encode(),
    )
    assert result.returncode == 0, result.stderr.decode()
    assert status(redis_env, "stdin")["pending"] == 3


def test_status_of_a_list_filled_by_hand(redis_server, redis_env):
    redis_server.client().rpush("manual", "x")
    assert status(redis_env, "manual") == {
        "queue": "manual",
        "pending": 1,
        "in_flight": 0,
        "done": 0,
        "failed": 0,
        "sealed": False,
        "state": "none",
    }


def test_status_output_is_whole_on_a_pipe_without_unbuffered_output(redis_server, redis_env):
    """The command ends without the interpreter's teardown (cli.exit_without_teardown), which is
    what flushes a block-buffered stdout: outside the images, where PYTHONUNBUFFERED is not set,
    the output on a pipe must still be all there."""
    redis_server.client().rpush("piped", "x", "y")
    result = run_jobworker(["status", "--queue", "piped"], {**redis_env, "PYTHONUNBUFFERED": ""})
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert (lines[0], lines[1].split()) == ("queue piped (none)", ["pending", "2"])
    assert lines[-1].split()[0] == "failed", lines  # the last line of the report
