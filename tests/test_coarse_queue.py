"""The coarse-grained work queue against a real rabbitmq-server: `jobworker coarse`, and the
RabbitMQ side of `jobworker seed`, `status` and `requeue-failed`.

Every worker is a separate process, as in a pod, but for one test that must hold the worker's
program thread at a chosen moment and so runs a CoarseWorker in this process. The broker is Debian
12's rabbitmq-server 3.10 on a temporary node, and again the stand-in for the rabbitmq chart's
official image (RabbitMQ 4.3) in a container (see conftest.py). Most tests share one node per
version (`rabbit_server`) and keep apart by queue name; the ones that restart or reconfigure the
broker start their own.
"""

import json
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

import pika
import pytest

from devkit.servers import RabbitServer, free_port, wait_until
from jobworker import coarse as coarse_module
from jobworker.amqpconsumer import Consumer
from jobworker.amqpqueue import broker_from
from jobworker.constants import (
    AMQP_SEED_CHUNK,
    HEADER_ATTEMPTS,
    HEADER_ERROR,
    HEADER_QUEUE,
    AmqpNames,
    ExitCode,
)
from jobworker.items import items_digest
from jobworker.runner import CommandRunner, ItemDelivery
from jobworker.stopping import StopRequest
from tests.support.processes import one_line_error, run_jobworker, start_jobworker, worker_env

pytestmark = pytest.mark.broker_versions

WAIT = "10"  # --wait for workers that should find a message at once


# --- helpers --------------------------------------------------------------------------------------
def seed(env: Mapping[str, str], queue: str, *items: str, options: Sequence[str] = ()) -> None:
    result = run_jobworker(["seed", "--queue", queue, *options, *items], env)
    assert result.returncode == 0, result.stderr.decode()


def coarse(
    env: Mapping[str, str], queue: str, *command: str, options: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    return run_jobworker(["coarse", "--queue", queue, "--wait", WAIT, *options, "--", *command], env)


def declared(server: RabbitServer, queue: str) -> pika.spec.Queue.DeclareOk | None:
    """A passive declaration of a queue (counts of messages and consumers), None when it does not exist."""
    connection = server.connection()
    try:
        return connection.channel().queue_declare(queue, passive=True).method
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code != 404:
            raise
        return None
    finally:
        connection.close()


def ready(server: RabbitServer, queue: str) -> int | None:
    """Messages ready in a queue, None when it does not exist."""
    found = declared(server, queue)
    return None if found is None else found.message_count


def take_all(server: RabbitServer, queue: str) -> list[tuple[bytes, dict]]:
    """Consume (and acknowledge) every message of a queue: bodies and headers, in queue order."""
    connection = server.connection()
    taken = []
    try:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((body, properties.headers or {}))
    finally:
        connection.close()


def error_line(
    result: subprocess.CompletedProcess, *words: str, status: ExitCode = ExitCode.ERROR, only: bool = True
) -> str:
    """The worker exited `status` and said why in one line naming `words`: its only line (bad input
    is refused before anything happens), or with only=False its last."""
    stderr = result.stderr.decode()
    assert result.returncode == status, stderr
    line = one_line_error(result) if only else stderr.strip().splitlines()[-1]
    assert " ERROR " in line, stderr
    for word in words:
        assert word in line, line
    return line


def wait_for_line(process: subprocess.Popen, expected: bytes, timeout: float = 30) -> None:
    """Read the worker's stdout (the program's output) until a line equals `expected`."""
    assert process.stdout is not None
    while True:
        ready_to_read, _, _ = select.select([process.stdout], [], [], timeout)
        assert ready_to_read, f"no {expected!r} on stdout within {timeout} s"
        line = process.stdout.readline()
        assert line, f"stdout ended before {expected!r}: {process.stderr.read().decode()}"
        if line.rstrip(b"\n") == expected:
            return


def started_on_a_long_item(env: Mapping[str, str], queue: str, grace_seconds: str) -> subprocess.Popen:
    """A coarse worker whose program has started on its message and would run for a minute: what
    a signal or a broker crash then does to the message is the test's."""
    options = ["--queue", queue, "--grace-seconds", grace_seconds]
    worker = start_jobworker(["coarse", *options, "--", "sh", "-c", "echo started; exec sleep 60"], env)
    wait_for_line(worker, b"started")
    return worker


def arguments_of(server: RabbitServer, queue: str) -> dict:
    """A queue's arguments, as rabbitmqctl lists them (AMQP 0-9-1 does not tell a client)."""
    listed = server.ctl("list_queues", "--quiet", "name", "arguments", "--formatter", "json").stdout
    [arguments] = [entry["arguments"] for entry in json.loads(listed) if entry["name"] == queue]
    return {name: value for name, _type, value in arguments}


def headers_text(headers: dict, key: str) -> str:
    value = headers[key]
    return value.decode() if isinstance(value, bytes) else str(value)


# --- one message per process ---------------------------------------------------------------------
def test_each_process_takes_exactly_one_message_in_order(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "apple", "banana", "cherry")
    outputs = []
    for _ in range(3):
        result = coarse(amqp_env, amqp_queue, "cat")
        assert result.returncode == ExitCode.OK, result.stderr.decode()
        outputs.append(result.stdout)
    assert outputs == [b"apple", b"banana", b"cherry"]
    assert ready(rabbit_server, amqp_queue) == 0
    assert ready(rabbit_server, AmqpNames.for_queue(amqp_queue).failed) == 0


def test_item_reaches_the_program_by_env_arg_and_file(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "one", "two", "three")
    by_env = coarse(
        amqp_env, amqp_queue, "sh", "-c", 'printf "%s" "$WORK_ITEM"', options=["--deliver", "env"]
    )
    by_arg = coarse(amqp_env, amqp_queue, "echo", "item={item}")
    by_file = coarse(amqp_env, amqp_queue, "cat", "{item_file}")
    assert [by_env.stdout, by_arg.stdout, by_file.stdout] == [b"one", b"item=two\n", b"three"]


def test_no_message_within_wait_exits_no_work(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "only")
    assert coarse(amqp_env, amqp_queue, "cat").returncode == ExitCode.OK
    result = run_jobworker(["coarse", "--queue", amqp_queue, "--wait", "1", "--", "cat"], amqp_env)
    assert result.returncode == ExitCode.NO_WORK, result.stderr.decode()
    assert b"no message arrived" in result.stderr
    assert result.stdout == b""


# --- failures: ack only on success, retry, dead-letter ------------------------------------------
def test_failed_item_is_retried_then_dead_lettered_with_its_error(rabbit_server, amqp_env, amqp_queue):
    names = AmqpNames.for_queue(amqp_queue)
    seed(amqp_env, amqp_queue, "poison")
    failing = ("sh", "-c", 'echo "cannot handle $WORK_ITEM" >&2; exit 7')
    options = ["--deliver", "env", "--max-attempts", "3"]
    for _attempt in (1, 2):
        result = coarse(amqp_env, amqp_queue, *failing, options=options)
        assert result.returncode == ExitCode.ITEM_REQUEUED, result.stderr.decode()
        assert ready(rabbit_server, amqp_queue) == 1  # not acknowledged away: back in the queue
        assert ready(rabbit_server, names.failed) == 0
    last = coarse(amqp_env, amqp_queue, *failing, options=options)
    assert last.returncode == ExitCode.OK, last.stderr.decode()  # the completion still counts
    assert b"moved to" in last.stderr
    assert ready(rabbit_server, amqp_queue) == 0

    status = run_jobworker(["status", "--queue", amqp_queue, "--json"], amqp_env)
    assert json.loads(status.stdout) == {
        "queue": amqp_queue,
        "ready": 0,
        "unacked": None,
        "consumers": 0,
        "failed": 1,
    }
    text = run_jobworker(["status", "--queue", amqp_queue], amqp_env).stdout.decode()
    assert "poison: exit status 7: cannot handle poison" in text

    [(body, headers)] = take_all(rabbit_server, names.failed)
    assert body == b"poison"
    assert headers[HEADER_ATTEMPTS] == 3
    assert headers_text(headers, HEADER_ERROR) == "exit status 7: cannot handle poison"
    assert headers_text(headers, HEADER_QUEUE) == amqp_queue


def test_requeue_failed_gives_items_fresh_attempts(rabbit_server, amqp_env, amqp_queue):
    names = AmqpNames.for_queue(amqp_queue)
    seed(amqp_env, amqp_queue, "flaky")
    result = coarse(amqp_env, amqp_queue, "false", options=["--max-attempts", "1"])
    assert result.returncode == ExitCode.OK, result.stderr.decode()
    assert ready(rabbit_server, names.failed) == 1

    moved = run_jobworker(["requeue-failed", "--queue", amqp_queue], amqp_env)
    assert moved.returncode == 0, moved.stderr.decode()
    assert b"moved 1 failed items" in moved.stderr
    assert ready(rabbit_server, names.failed) == 0
    done = coarse(amqp_env, amqp_queue, "cat")
    assert (done.returncode, done.stdout) == (ExitCode.OK, b"flaky")


def test_failed_item_without_a_dead_letter_exchange_stays_in_the_queue(rabbit_server, amqp_env, amqp_queue):
    with rabbit_server.connection() as connection:  # declared by hand, as the docs do: no Q.failed
        connection.channel().queue_declare(amqp_queue, durable=True)
        connection.channel().basic_publish("", amqp_queue, b"doomed")
    result = coarse(amqp_env, amqp_queue, "false", options=["--max-attempts", "1"])
    error_line(result, "cannot record the failure", "does not exist", "stays in queue", only=False)
    assert ready(rabbit_server, amqp_queue) == 1


# --- --drain ---------------------------------------------------------------------------------------
def test_drain_processes_every_message_in_one_process(rabbit_server, amqp_env, amqp_queue):
    items = [f"item-{n}" for n in range(25)]
    seed(amqp_env, amqp_queue, *items)
    result = coarse(
        amqp_env, amqp_queue, "sh", "-c", "cat; echo", options=["--drain", "--prefetch", "4", "--idle", "1"]
    )
    assert result.returncode == ExitCode.OK, result.stderr.decode()
    assert result.stdout.decode().splitlines() == items
    assert b"is drained" in result.stderr
    assert ready(rabbit_server, amqp_queue) == 0


def test_drain_retries_in_place_and_ends_with_failed_items(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "good-1", "bad", "good-2")
    result = coarse(
        amqp_env,
        amqp_queue,
        "sh",
        "-c",
        'test "$WORK_ITEM" != bad && echo "$WORK_ITEM"',
        options=["--drain", "--deliver", "env", "--max-attempts", "2", "--idle", "1", "--prefetch", "3"],
    )
    assert result.returncode == ExitCode.ITEMS_FAILED, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["good-1", "good-2"]
    assert result.stderr.count(b"item failed (attempt") == 2
    assert ready(rabbit_server, amqp_queue) == 0
    assert [body for body, _ in take_all(rabbit_server, AmqpNames.for_queue(amqp_queue).failed)] == [b"bad"]


# --- SIGTERM -----------------------------------------------------------------------------------------
def test_sigterm_before_the_ack_leaves_the_message_in_the_queue(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "long")
    worker = started_on_a_long_item(amqp_env, amqp_queue, grace_seconds="0.5")
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == ExitCode.TERMINATED, stderr.decode()
    assert b"went back to the queue" in stderr
    [(body, _)] = take_all(rabbit_server, amqp_queue)
    assert body == b"long"


def test_sigterm_lets_a_program_finish_within_the_grace_period(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "short")
    worker = start_jobworker(
        ["coarse", "--queue", amqp_queue, "--grace-seconds", "60", "--", "sh", "-c", "echo started; sleep 1"],
        amqp_env,
    )
    wait_for_line(worker, b"started")
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == ExitCode.OK, stderr.decode()
    assert ready(rabbit_server, amqp_queue) == 0


def test_sigterm_while_waiting_for_a_message(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "first")
    assert coarse(amqp_env, amqp_queue, "cat").returncode == 0
    worker = start_jobworker(["coarse", "--queue", amqp_queue, "--wait", "300", "--", "cat"], amqp_env)
    wait_until(lambda: declared(rabbit_server, amqp_queue).consumer_count == 1, 30, "the worker to consume")
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == ExitCode.TERMINATED, stderr.decode()


# --- the main thread pumping the connection while the program runs --------------------------------
def test_an_item_is_settled_on_the_programs_wake_without_waiting_out_a_pump(
    rabbit_server, amqp_env, amqp_queue, monkeypatch
):
    """The program's thread wakes the main thread's pump as the program ends, then takes a moment
    to exit. A main thread that pumped again in that moment would wait out PUMP_SECONDS before it
    settled: a fifth of a second added to one pod in five on a loaded node. Here the thread lingers
    a whole second after its wake, in-process, so that such a pump cannot be missed."""
    seed(amqp_env, amqp_queue, "only")
    lingering = threading.Event()
    pumps_while_lingering: list[float] = []

    class LingeringConsumer(Consumer):  # a real consumer on a real connection, slow to let go
        def wake(self) -> None:
            super().wake()
            lingering.set()
            time.sleep(1)
            lingering.clear()

        def pump(self, seconds: float) -> None:
            if lingering.is_set():
                pumps_while_lingering.append(seconds)
            super().pump(seconds)

    monkeypatch.setattr(coarse_module, "Consumer", LingeringConsumer)
    settings = coarse_module.CoarseSettings(
        max_attempts=3, wait_seconds=10, drain=False, prefetch=1, idle_seconds=0, consumer_timeout=None
    )
    worker = coarse_module.CoarseWorker(
        broker_from(amqp_env["AMQP_URL"], amqp_env, 10, "test"),
        AmqpNames.for_queue(amqp_queue),
        lambda stop: CommandRunner(["true"], ItemDelivery.STDIN, stop),
        settings,
        StopRequest(),
    )
    assert worker.run() == ExitCode.OK
    assert pumps_while_lingering == []
    assert worker.done == 1
    assert ready(rabbit_server, amqp_queue) == 0


# --- long items: heartbeats and the delivery acknowledgement timeout ------------------------------
def test_heartbeats_go_on_while_a_long_program_runs(rabbit_server, amqp_env, amqp_queue):
    """With a 1 s heartbeat the broker drops a silent connection after about 2 s; the item runs 6 s."""
    seed(amqp_env, amqp_queue, "slow")
    env = {**amqp_env, "AMQP_URL": amqp_env["AMQP_URL"] + "?heartbeat=1"}
    result = coarse(env, amqp_queue, "sh", "-c", "sleep 6; cat", options=["--consumer-timeout", "3600"])
    assert (result.returncode, result.stdout) == (ExitCode.OK, b"slow"), result.stderr.decode()
    assert ready(rabbit_server, amqp_queue) == 0


@pytest.fixture(scope="module")
def impatient_server(rabbit_image: str | None) -> Iterator[RabbitServer]:
    """A broker that gives up on a delivery left unacknowledged for 1 s (consumer_timeout), one per
    version for these tests; 3.10 looks at its channels' deliveries every tick, 200 ms here."""
    server = RabbitServer(
        config={"consumer_timeout": "1000"},
        advanced="{rabbit, [{channel_tick_interval, 200}]}",
        image=rabbit_image,
    )
    with server:
        yield server


# A 2 s item under that 1 s consumer_timeout: the options of `jobworker seed` and `jobworker coarse`,
# and whether the broker gives up on the delivery, on 3.10 and on 4.3. RabbitMQ 3.10 times out the
# deliveries of every queue and ignores x-consumer-timeout (honoured from 3.11.15: the worker leaves
# it out). RabbitMQ 4.3 times out only quorum queues' deliveries, honouring the argument there;
# classic queues' deliveries never time out (and the worker leaves the argument out, as 4.3 refuses
# it for them).
LONG = ("--consumer-timeout", "3600")
TIMEOUT_CASES = {
    "classic": ((), (), (True, False)),
    "quorum": (("--quorum",), (), (True, True)),
    "quorum-queue-argument": (("--quorum", *LONG), (), (True, False)),
    "quorum-consumer-argument": (("--quorum",), LONG, (True, False)),
    "classic-both-arguments": (LONG, LONG, (True, False)),
}


@pytest.mark.parametrize("case", TIMEOUT_CASES)
def test_delivery_acknowledgement_timeout_is_a_failure_not_a_success(impatient_server, amqp_queue, case):
    """Where the broker gives up on the delivery (consumer_timeout), the worker must not report
    success; where it does not (or the argument raised the limit), the item is done."""
    seed_options, worker_options, timed_out = TIMEOUT_CASES[case]
    server = impatient_server
    before_43 = server.version() < (4, 3)
    seed(server.env(), amqp_queue, "slow", options=seed_options)
    result = coarse(
        server.env(),
        amqp_queue,
        "sh",
        "-c",
        "sleep 2; cat",
        options=["--grace-seconds", "0", *worker_options],
    )
    stderr = result.stderr.decode()
    if timed_out[0 if before_43 else 1]:
        assert result.returncode == ExitCode.ERROR, stderr
        # Up to 4.2 the broker closes the channel; 4.3 cancels the consumer (basic.cancel).
        assert ("timed out" if before_43 else "cancelled our consumer") in stderr
        assert "went back to the queue" in stderr
        assert ready(server, amqp_queue) == 1
    else:
        assert (result.returncode, result.stdout) == (ExitCode.OK, b"slow"), stderr
        assert ready(server, amqp_queue) == 0
    assert ready(server, AmqpNames.for_queue(amqp_queue).failed) == 0


def test_consumer_timeout_is_left_out_where_the_broker_ignores_or_refuses_it(
    rabbit_server, amqp_env, amqp_queue
):
    """On a classic queue RabbitMQ 4.3 refuses x-consumer-timeout (4.3.2 and later: 406), as a
    queue argument and as a consumer argument, since it times out none of its deliveries; 3.10
    ignores it. The seed and the worker leave it out and say why in one line, and the item runs."""
    before_43 = rabbit_server.version() < (4, 3)
    seeded = run_jobworker(["seed", "--queue", amqp_queue, "--consumer-timeout", "7200", "x"], amqp_env)
    assert seeded.returncode == ExitCode.OK, seeded.stderr.decode()
    worked = coarse(amqp_env, amqp_queue, "cat", options=["--consumer-timeout", "7200"])
    assert (worked.returncode, worked.stdout) == (ExitCode.OK, b"x"), worked.stderr.decode()
    for result, kind in ((seeded, "queue argument"), (worked, "consumer argument")):
        [line] = [
            line for line in result.stderr.decode().splitlines() if "--consumer-timeout left out" in line
        ]
        if before_43:
            assert f"ignores the {kind} x-consumer-timeout" in line
            assert "the server's consumer_timeout applies" in line
        else:
            assert f"{amqp_queue!r} is a classic queue" in line
            assert "needs no limit" in line


def test_a_quorum_queue_dead_letters_an_item_whose_workers_keep_dying(rabbit_server, amqp_env, amqp_queue):
    """A worker killed outright (SIGKILL, OOM) records no attempt: the broker takes the message back.
    RabbitMQ 4.x counts such returns against a quorum queue's delivery limit, 20 by default, and
    dead-letters the item once it is given back a 21st time, into Q.failed as the seeder set
    x-dead-letter-exchange. RabbitMQ 3.10 has no default limit: the item stays in the queue."""
    names = AmqpNames.for_queue(amqp_queue)
    seed(amqp_env, amqp_queue, "deadly", options=["--quorum"])

    def crash() -> None:
        result = coarse(amqp_env, amqp_queue, "sh", "-c", 'kill -9 "$PPID"')
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()
        wait_until(
            lambda: ready(rabbit_server, amqp_queue) + ready(rabbit_server, names.failed) == 1,
            30,
            "the broker to take the message back",
        )

    for _ in range(20):
        crash()
    assert ready(rabbit_server, amqp_queue) == 1, "dead-lettered within the limit"
    crash()
    if rabbit_server.version() < (4, 0):
        assert ready(rabbit_server, amqp_queue) == 1
        assert ready(rabbit_server, names.failed) == 0
        return
    assert ready(rabbit_server, amqp_queue) == 0
    text = run_jobworker(["status", "--queue", amqp_queue], amqp_env).stdout.decode()
    assert "deadly: dead-lettered by the broker (delivery_limit)" in text
    [(body, _)] = take_all(rabbit_server, names.failed)
    assert body == b"deadly"


def test_a_crash_loop_counts_against_the_running_message_not_the_prefetched_ones(
    rabbit_server, amqp_env, amqp_queue
):
    """--drain --prefetch 5 on a quorum queue, and a message whose program kills its worker. A lost
    connection returns every message the worker held, and RabbitMQ (3.10 and 4.3 alike) counts each
    return in x-delivery-count, toward a quorum queue's delivery limit (20 from 4.0 on). So the
    worker holds nothing else while it runs a message that a lost worker held (redelivered), and
    each connection starts at prefetch 1: over 4 crashes the poison message is counted 4 times, the
    messages prefetched along with it at most once (when it first ran, as a fresh message)."""
    seed(amqp_env, amqp_queue, "a", "b", "poison", "c", "d", "e", "f", "g", "h", options=["--quorum"])
    command = ["sh", "-c", 'read -r x; [ "$x" != poison ] || kill -9 "$PPID"; echo "$x"']
    for _ in range(4):
        result = coarse(amqp_env, amqp_queue, *command, options=["--drain", "--prefetch", "5", "--idle", "1"])
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()
        wait_until(
            lambda: declared(rabbit_server, amqp_queue).consumer_count == 0, 30, "the broker to notice"
        )
    counts = {
        body: headers.get("x-delivery-count", 0) for body, headers in take_all(rabbit_server, amqp_queue)
    }
    assert counts.pop(b"poison") == 4
    assert all(count <= 1 for count in counts.values()), counts


def test_messages_of_a_lost_worker_run_alone_at_a_worker_that_prefetches(rabbit_server, amqp_env, amqp_queue):
    """A worker at --prefetch 5 gets the messages a SIGKILLed worker held (redelivered): it hands
    them back with what it holds and takes them again at prefetch 1, one at a time; every message
    is done, none is lost."""
    items = [f"m{n:02d}" for n in range(30)]
    seed(amqp_env, amqp_queue, *items, options=["--quorum"])
    args = ["coarse", "--queue", amqp_queue, "--wait", WAIT, "--drain", "--prefetch", "5", "--idle", "2"]
    command = ["--", "sh", "-c", 'read -r x; echo "$x"; sleep 0.2']
    steady = start_jobworker([*args, *command], amqp_env)
    wait_for_line(steady, b"m01")  # it has run a first message: it is at the full prefetch now
    doomed = start_jobworker([*args, *command], amqp_env)
    assert doomed.stdout is not None
    # Its second message: it runs at the full prefetch, holding more than the one it runs.
    done_by_doomed = [doomed.stdout.readline().strip(), doomed.stdout.readline().strip()]
    doomed.kill()
    doomed.wait()
    out, err = steady.communicate(timeout=120)
    assert steady.returncode == 0, err.decode()
    assert b"to run it with nothing else held" in err
    done = {b"m00", b"m01", *out.split(), *done_by_doomed}  # wait_for_line read the first two
    assert done == {item.encode() for item in items}, "messages were lost"
    assert ready(rabbit_server, amqp_queue) == 0


def test_a_message_handed_back_on_sigterm_is_not_a_failed_delivery_on_43(rabbit_server, amqp_env, amqp_queue):
    """On SIGTERM (an eviction, a node drain) the worker hands its message back with basic.nack.
    RabbitMQ 4.3 no longer counts that in a quorum queue's x-delivery-count, so evictions never use
    up the delivery limit; 3.10 counts it, once. Once: the worker cancels its consumer before the
    nack, or the broker could deliver the message straight back and the worker's disconnection
    return it again, which both versions count. Attempts live in the message
    (x-jobworker-attempts) because of such differences: the hand-back records none."""
    seed(amqp_env, amqp_queue, "evicted", options=["--quorum"])
    worker = started_on_a_long_item(amqp_env, amqp_queue, grace_seconds="0.5")
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == ExitCode.TERMINATED, stderr.decode()
    [(body, headers)] = take_all(rabbit_server, amqp_queue)
    assert body == b"evicted"
    assert HEADER_ATTEMPTS not in headers
    assert headers.get("x-delivery-count") == (1 if rabbit_server.version() < (4, 3) else None)


# --- interoperation with the Kubernetes docs' amqp-tools ----------------------------------------
def test_amqp_publish_messages_are_consumed_by_jobworker_coarse(rabbit_server, amqp_env, amqp_queue):
    url = rabbit_server.url_with_credentials
    subprocess.run(
        ["amqp-declare-queue", "--url", url, "-d", "-q", amqp_queue], check=True, capture_output=True
    )
    for body in ("hello world", "second"):
        subprocess.run(["amqp-publish", "--url", url, "-r", amqp_queue, "-p", "-b", body], check=True)
    outputs = [coarse(amqp_env, amqp_queue, "cat").stdout for _ in range(2)]
    assert outputs == [b"hello world", b"second"]
    assert ready(rabbit_server, amqp_queue) == 0


def test_a_seeded_queue_is_consumed_by_amqp_consume(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "red", "green", "blue")
    result = subprocess.run(
        [
            "amqp-consume",
            "--url",
            rabbit_server.url_with_credentials,
            "-q",
            amqp_queue,
            "-c",
            "3",
            "--",
            "sh",
            "-c",
            "cat; echo",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["red", "green", "blue"]
    assert ready(rabbit_server, amqp_queue) == 0


# --- the broker restarted mid-run ---------------------------------------------------------------
def test_broker_restarted_mid_run_loses_nothing(tmp_path, amqp_queue, rabbit_image):
    with RabbitServer(image=rabbit_image) as server:
        env = server.env()
        # One message per process: the broker crashes while the program runs. The worker cannot
        # acknowledge any more, so it stops the program and fails; the message is still there.
        seed(env, amqp_queue, "held")
        worker = started_on_a_long_item(env, amqp_queue, grace_seconds="1")
        server.kill()
        _, stderr = worker.communicate(timeout=60)
        assert worker.returncode == ExitCode.ERROR, stderr.decode()
        assert b"lost the connection" in stderr
        server.start()
        assert ready(server, amqp_queue) == 1

        # Draining: the broker crashes after a few items; the worker reconnects and finishes.
        items = [f"n{n}" for n in range(20)]
        seed(env, amqp_queue, *items)
        done = tmp_path / "done"
        worker = start_jobworker(
            [
                "coarse", "--queue", amqp_queue, "--drain", "--idle", "2", "--connect-timeout", "120",
                "--", "sh", "-c", 'echo "$1" >> "$2"; sleep 0.2', "sh", "{item}", str(done),
            ],
            env,
        )  # fmt: skip
        wait_until(lambda: done.exists() and len(done.read_text().split()) >= 5, 60, "five items done")
        server.kill()
        server.start()
        _, stderr = worker.communicate(timeout=180)
        assert worker.returncode == ExitCode.OK, stderr.decode()
        assert b"reconnecting" in stderr
        assert set(done.read_text().split()) == {"held", *items}  # at least once each; none lost
        assert ready(server, amqp_queue) == 0


# --- seeding ----------------------------------------------------------------------------------------
def test_seed_twice_publishes_once(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "a", "b", "c")
    again = run_jobworker(["seed", "--queue", amqp_queue, "a", "b", "c"], amqp_env)
    assert again.returncode == 0, again.stderr.decode()
    assert b"already holds these 3 items" in again.stderr
    assert [body for body, _ in take_all(rabbit_server, amqp_queue)] == [b"a", b"b", b"c"]


def test_an_interrupted_seed_resumes_without_duplicates(tmp_path, rabbit_server, amqp_env, amqp_queue):
    items = [f"item-{n:05d}" for n in range(20 * AMQP_SEED_CHUNK)]
    items_file = tmp_path / "items.txt"
    items_file.write_text("\n".join(items) + "\n")
    names = AmqpNames.for_queue(amqp_queue)
    marker = names.seed_marker(
        items_digest([item.encode() for item in items], prefix=struct.pack(">Q", AMQP_SEED_CHUNK))
    )

    seeder = start_jobworker(["seed", "--queue", amqp_queue, "--file", str(items_file)], amqp_env)
    wait_until(
        lambda: (ready(rabbit_server, marker) or 0) >= 1, 60, "the first committed chunk", interval=0.01
    )
    seeder.send_signal(signal.SIGSTOP)  # frozen mid-seed, then killed like an evicted pod
    committed = ready(rabbit_server, marker)
    seeder.kill()
    seeder.communicate(timeout=30)
    assert committed < 20, "the seed finished before it could be interrupted"
    # Whole chunks only. The broker's counts trail a commit by a moment, so wait for them; a
    # partial chunk would never reach a whole number of chunks.
    wait_until(
        lambda: ready(rabbit_server, amqp_queue) == committed * AMQP_SEED_CHUNK, 10, "the committed chunks"
    )

    again = run_jobworker(["seed", "--queue", amqp_queue, "--file", str(items_file)], amqp_env)
    assert again.returncode == 0, again.stderr.decode()
    assert b"resumed" in again.stderr
    assert [body.decode() for body, _ in take_all(rabbit_server, amqp_queue)] == items


def test_seed_waits_for_another_seeder_of_the_same_queue(rabbit_server, amqp_env, amqp_queue):
    with rabbit_server.connection() as connection:  # the lock a running seeder holds
        connection.channel().queue_declare(AmqpNames.for_queue(amqp_queue).seeding, exclusive=True)
        blocked = run_jobworker(["seed", "--queue", amqp_queue, "--connect-timeout", "1", "x"], amqp_env)
        error_line(blocked, "another `jobworker seed` is running")
    seed(amqp_env, amqp_queue, "x")
    assert ready(rabbit_server, amqp_queue) == 1


def test_a_seed_already_made_needs_no_lock(rabbit_server, amqp_env, amqp_queue):
    """Every pod of a coarse Job seeds: once the items are in, the pods find them without waiting
    for each other at the lock."""
    seed(amqp_env, amqp_queue, "x", "y")
    with rabbit_server.connection() as connection:  # the lock a running seeder holds
        connection.channel().queue_declare(AmqpNames.for_queue(amqp_queue).seeding, exclusive=True)
        again = run_jobworker(["seed", "--queue", amqp_queue, "--connect-timeout", "1", "x", "y"], amqp_env)
    assert again.returncode == 0, again.stderr.decode()
    assert b"already holds these 2 items" in again.stderr
    assert ready(rabbit_server, amqp_queue) == 2


def test_seed_declares_a_quorum_queue_with_its_dead_letter_queue(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "q1", options=["--quorum", "--consumer-timeout", "7200"])
    names = AmqpNames.for_queue(amqp_queue)
    classic = {"x-dead-letter-exchange": names.failed, "x-consumer-timeout": 7200 * 1000}
    with (
        rabbit_server.connection() as connection,  # the same arguments but the queue type
        pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-queue-type"),
    ):
        connection.channel().queue_declare(amqp_queue, durable=True, arguments=classic)
    assert ready(rabbit_server, names.failed) == 0
    # The queue argument where the broker honours it (3.11.15+; 3.10 would ignore it). From 4.0 a
    # quorum queue dead-letters, or without a dead-letter exchange drops, a message given back more
    # than 20 times: Q.failed, where the broker's dead letters arrive with that count, has no limit.
    before_3_11_15, before_4 = rabbit_server.version() < (3, 11, 15), rabbit_server.version() < (4, 0)
    assert arguments_of(rabbit_server, amqp_queue) == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": names.failed,
        **({} if before_3_11_15 else {"x-consumer-timeout": 7200 * 1000}),
    }
    assert arguments_of(rabbit_server, names.failed) == {
        "x-queue-type": "quorum",
        **({} if before_4 else {"x-delivery-limit": -1}),
    }
    assert coarse(amqp_env, amqp_queue, "cat").stdout == b"q1"


def test_seed_uses_a_queue_declared_by_hand_as_it_is(rabbit_server, amqp_env, amqp_queue):
    url = rabbit_server.url_with_credentials
    subprocess.run(
        ["amqp-declare-queue", "--url", url, "-d", "-q", amqp_queue], check=True, capture_output=True
    )
    result = run_jobworker(["seed", "--queue", amqp_queue, "--quorum", "x"], amqp_env)
    assert result.returncode == 0, result.stderr.decode()
    assert b"exists: using it as it is" in result.stderr
    assert ready(rabbit_server, amqp_queue) == 1


def test_workers_that_seed_first_publish_the_items_once_and_take_one_each(
    tmp_path, rabbit_server, amqp_env, amqp_queue
):
    """The chart's pods: each runs the same seed, then takes one message. Started together, the
    seeds meet at the lock; only one publishes, and every worker starts on the whole list."""
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps(["apple", "banana", "cherry"]))
    args = ["coarse", "--queue", amqp_queue, "--wait", WAIT, "--seed-file", str(items_file), "--", "cat"]
    workers = [start_jobworker(args, amqp_env) for _ in range(3)]
    results = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [ExitCode.OK] * 3, [e.decode() for _, e in results]
    assert sorted(out for out, _ in results) == [b"apple", b"banana", b"cherry"]
    logs = [err.decode() for _, err in results]
    assert sum("published 3 items" in log for log in logs) == 1, logs
    assert sum("already holds these 3 items" in log for log in logs) == 2, logs
    assert ready(rabbit_server, amqp_queue) == 0

    again = coarse(amqp_env, amqp_queue, "cat", options=["--seed-file", str(items_file), "--wait", "1"])
    assert again.returncode == ExitCode.NO_WORK, again.stderr.decode()  # a retried pod: nothing twice


def test_a_worker_that_seeds_declares_the_queue_as_asked(tmp_path, rabbit_server, amqp_env, amqp_queue):
    items_file = tmp_path / "items.txt"
    items_file.write_text("q1\n")
    result = coarse({**amqp_env, "SEED_FILE": str(items_file), "QUORUM_QUEUE": "true"}, amqp_queue, "cat")
    assert result.returncode == ExitCode.OK, result.stderr.decode()
    assert result.stdout == b"q1"
    assert arguments_of(rabbit_server, amqp_queue)["x-queue-type"] == "quorum"


# --- bad input: one line, non-zero, nothing lost --------------------------------------------------
@pytest.mark.parametrize(
    ("change", "args", "outcome"),
    [
        ({"AMQP_PASSWORD": "wrong"}, [], (ExitCode.ERROR, ["refused the credentials", "jobworker-test"])),
        ({"AMQP_USERNAME": ""}, [], (ExitCode.USAGE, ["no RabbitMQ user given"])),
        ({"AMQP_PASSWORD": ""}, [], (ExitCode.USAGE, ["no password"])),
        ({}, ["--queue", "no-such-queue"], (ExitCode.ERROR, ["queue 'no-such-queue' does not exist"])),
        (
            {"AMQP_URL": "amqp://127.0.0.1:{port}/no-such-vhost"},
            [],
            (ExitCode.ERROR, ["refused access to virtual host"]),
        ),
        ({"AMQP_URL": "http://127.0.0.1:{port}/"}, [], (ExitCode.USAGE, ["bad AMQP URL", "amqp://"])),
        ({}, ["--prefetch", "5"], (ExitCode.USAGE, ["--prefetch above 1 needs --drain"])),
        ({}, ["--deliver", "arg"], (ExitCode.USAGE, ["needs {item}"])),
        ({}, ["--quorum"], (ExitCode.USAGE, ["--quorum applies to the queue a seed declares"])),
        ({}, ["--seed-file", "/no/such/file"], (ExitCode.ERROR, ["cannot read items file /no/such/file"])),
        ({}, ["--seed-file", "/dev/null"], (ExitCode.ERROR, ["/dev/null holds no items"])),
    ],
    ids=[
        "password",
        "no-user",
        "no-password",
        "queue",
        "vhost",
        "url",
        "prefetch",
        "deliver",
        "quorum",
        "seed-file",
        "empty-seed-file",
    ],
)
def test_bad_input_is_one_line_and_loses_nothing(rabbit_server, amqp_queue, change, args, outcome):
    seed(rabbit_server.env(), amqp_queue, "precious")
    env = {**rabbit_server.env(), **change}
    env = {k: v.format(port=rabbit_server.port) for k, v in env.items()}
    result = run_jobworker(["coarse", "--queue", amqp_queue, "--wait", "1", *args, "--", "cat"], env)
    status, words = outcome
    error_line(result, *words, status=status)
    assert ready(rabbit_server, amqp_queue) == 1


def test_an_unreachable_broker_is_announced_then_one_error(rabbit_server, amqp_queue):
    """The connect timeout's wait is not silent: one line says what is awaited and for how long."""
    seed(rabbit_server.env(), amqp_queue, "precious")
    env = {**rabbit_server.env(), "AMQP_URL": f"amqp://127.0.0.1:{free_port()}/%2F"}
    result = run_jobworker(["coarse", "--queue", amqp_queue, "--connect-timeout", "1", "--", "cat"], env)
    error_line(result, "cannot reach RabbitMQ", only=False)
    waiting, _ = result.stderr.decode().strip().splitlines()
    assert "RabbitMQ at 127.0.0.1:" in waiting
    assert "does not answer yet" in waiting
    assert "waiting up to 1 s for it" in waiting
    assert ready(rabbit_server, amqp_queue) == 1


def test_an_empty_command_is_refused(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "precious")
    for command in ([], ["--", ""]):
        result = run_jobworker(["coarse", "--queue", amqp_queue, *command], amqp_env)
        error_line(result, "no command given", status=ExitCode.USAGE)
    assert ready(rabbit_server, amqp_queue) == 1


def test_bad_seed_and_status_input(rabbit_server, amqp_env, amqp_queue):
    usage = ExitCode.USAGE
    error_line(
        run_jobworker(["seed", "--queue", amqp_queue, "--no-seal", "x"], amqp_env), "--no-seal", status=usage
    )
    error_line(run_jobworker(["status", "--queue", amqp_queue], amqp_env), "does not exist")
    error_line(run_jobworker(["seed", "--queue", "amq.reserved", "x"], amqp_env), "reserved", status=usage)
    redis_only = {k: v for k, v in amqp_env.items() if k != "AMQP_URL"}
    error_line(
        run_jobworker(["seed", "--queue", amqp_queue, "--quorum", "x"], redis_only),
        "--amqp-url",
        status=usage,
    )
    assert ready(rabbit_server, amqp_queue) is None


# --- images with one backend only ------------------------------------------------------------------
def _without(module: str) -> list[str]:
    """The jobworker command in an interpreter where `module` cannot be imported."""
    program = f"import sys; sys.modules[{module!r}] = None; from jobworker.cli import main; main()"
    return [sys.executable, "-c", program]


def test_coarse_runs_without_redis_py_and_says_when_pika_is_missing(rabbit_server, amqp_env, amqp_queue):
    seed(amqp_env, amqp_queue, "no-redis-here")
    args = ["coarse", "--queue", amqp_queue, "--wait", WAIT, "--", "cat"]
    result = subprocess.run(
        [*_without("redis"), *args], env=worker_env(amqp_env), capture_output=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, b"no-redis-here"), result.stderr.decode()
    missing = subprocess.run(
        [*_without("pika"), *args], env=worker_env(amqp_env), capture_output=True, check=False
    )
    error_line(missing, "no RabbitMQ support", "jobworker[amqp]")


# --- start-up --------------------------------------------------------------------------------------
def test_a_coarse_pod_imports_nothing_its_worker_does_not_use(rabbit_server, amqp_env, amqp_queue):
    """A pod per item pays for every module its worker imports once per item, so the coarse worker
    leaves out what only others use: hashlib (OpenSSL's hashes, for seeds), pathlib (indexed's
    files) and dataclasses (the package's records are NamedTuples, which are quicker to define).
    `bench/coarse_queue.py --compare REV` measures what a change does to the worker's time."""
    seed(amqp_env, amqp_queue, "one")
    result = coarse({**amqp_env, "PYTHONPROFILEIMPORTTIME": "1"}, amqp_queue, "cat")
    assert (result.returncode, result.stdout) == (ExitCode.OK, b"one"), result.stderr.decode()
    lines = result.stderr.decode().splitlines()
    imported = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
    assert {"pika", "jobworker.coarse"} <= imported  # the profile covers the worker's imports
    assert not imported & {"hashlib", "pathlib", "dataclasses"}
