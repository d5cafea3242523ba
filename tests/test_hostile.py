"""The worker under hostile conditions (issue 14): nothing lost silently, nothing failed wrongly, no
secret leaked, and one line instead of a traceback or a hang. One test (or a few) per numbered item
of the issue, with the settings users get by default; each says which item it shows.

Tests whose outcome depends on the server (a Redis restarted empty, Lua scripts, what a server
answers on the wrong port) run on Debian's servers and on the official images' stand-ins (marker
`broker_versions`, see conftest.py); the others, about the worker's own handling of programs and
options, on Debian's only.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devkit.servers import RedisServer, wait_until
from jobworker.constants import (
    DEFAULT_GRACE_SECONDS,
    ENV_WITHHELD_FROM_PROGRAM,
    HAND_BACK_SECONDS,
    KILL_AFTER_TERM_SECONDS,
    ExitCode,
)
from jobworker.redisqueue import RedisQueue
from tests.support.handlers import read_records
from tests.support.processes import REPO_ROOT, one_line_error, run_jobworker, start_jobworker

versions = pytest.mark.broker_versions
LOST = "lost its state (Redis restarted without persistence"


def queue_of(server: RedisServer, name: str) -> RedisQueue:
    return RedisQueue(server.client(), name)


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode().strip().splitlines()[-1]


def wait_for_file(path: Path, timeout: float = 30) -> str:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", timeout, f"{path} to be written")
    return path.read_text()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill 0: it is dead all the same (reaped by init later).
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- 1. a Redis restarted without persistence ----------------------------------------------------
@pytest.fixture
def volatile_redis(tmp_path: Path, redis_image: str | None) -> Iterator[RedisServer]:
    """A redis-server without persistence (no append-only file, no snapshots): a restart empties it."""
    server = RedisServer(tmp_path / "volatile", password="volatile-pw", appendonly=False, image=redis_image)
    server.directory.mkdir()
    with server:
        yield server


@versions
@pytest.mark.parametrize("mode", ["handler", "command"])
def test_redis_restarted_without_persistence_fails_every_worker(volatile_redis, tmp_path, mode):
    """Item 1, and the acceptance's fault test: Redis is killed mid-run and comes back empty. Every
    worker, having seen the queue sealed, exits non-zero saying the queue's state was lost; none
    takes the empty list for a finished one (before: exit 0, a third of the items never ran)."""
    server = volatile_redis
    env = {
        "REDIS_URL": server.url,
        "REDIS_PASSWORD": server.password or "",
        "RECORD_FILE": str(tmp_path / "r"),
    }
    queue_of(server, "volatile").seed([b"item-%04d" % n for n in range(2000)])
    if mode == "handler":
        args = ["--handler", "tests.support.handlers:slow_record"]
        env["SLEEP_SECONDS"] = "0.005"
    else:
        args = ["--", sys.executable, "-c", "import time; time.sleep(0.005)"]
    workers = [start_jobworker(["fine", "--queue", "volatile", *args], env) for _ in range(3)]
    try:
        wait_until(lambda: queue_of(server, "volatile").status().done >= 30, 60, "some items to be done")
        server.kill()
        server.start()  # the same port, nothing on it
        for worker in workers:
            worker.wait(90)
        for worker in workers:
            stderr = worker.stderr.read().decode()
            assert worker.returncode == ExitCode.ERROR, stderr
            assert LOST in stderr.strip().splitlines()[-1], stderr
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


def test_a_list_filled_by_hand_that_lost_its_leases_fails_the_worker(volatile_redis, tmp_path):
    """Item 1, a list without an end-of-input marker (filled by hand, as in the docs): the worker
    held leases, and the lease counter behind them is gone, so the empty list is not finished."""
    server = volatile_redis
    server.client().rpush("byhand", *[b"item-%03d" % n for n in range(300)])
    env = {
        "REDIS_URL": server.url,
        "REDIS_PASSWORD": server.password or "",
        "RECORD_FILE": str(tmp_path / "r"),
    }
    worker = start_jobworker(["fine", "--queue", "byhand", "--", "sleep", "0.05"], env)
    try:
        wait_until(lambda: queue_of(server, "byhand").status().done >= 3, 30, "some items to be done")
        server.kill()
        server.start()
        assert worker.wait(90) == ExitCode.ERROR
        assert "this worker held lease" in worker.stderr.read().decode().strip().splitlines()[-1]
    finally:
        worker.kill()
        worker.wait()


# --- 2. a handler that raises SystemExit, KeyboardInterrupt ------------------------------------
def test_a_handler_raising_system_exit_fails_only_its_item(redis_server, redis_env, tmp_path):
    """Item 2: SystemExit and KeyboardInterrupt from a handler are that item's failure; the rest of
    the batch is done, once (before: the worker exited 7 without a word and, after three lost
    leases, failed the whole batch as "worker lost")."""
    items = [b"a", b"exit-7", b"b", b"interrupt", b"c"]
    queue_of(redis_server, "raising").seed(items)
    record = tmp_path / "record"
    env = {**redis_env, "RECORD_FILE": str(record)}
    result = run_jobworker(
        ["fine", "--queue", "raising", "--handler", "tests.support.handlers:raise_base_exceptions"], env
    )
    assert result.returncode == ExitCode.ITEMS_FAILED, result.stderr.decode()
    assert sorted(read_records(record)) == [b"a", b"b", b"c"]
    queue = queue_of(redis_server, "raising")
    assert queue.status().done == 3
    assert queue.failed_items() == [(b"exit-7", "SystemExit: 7"), (b"interrupt", "KeyboardInterrupt")]


# --- 3. a signal sent to the worker's whole process group ---------------------------------------
# Writes its pid to $PIDFILE, sleeps a second, then appends the item to $OUT.
SLOW_RECORD = ["sh", "-c", 'echo $$ > "$PIDFILE"; sleep 1; printf "%s\\n" "$1" >> "$OUT"', "sh", "{item}"]


def test_a_signal_to_the_whole_process_group_does_not_fail_the_item_fine(redis_server, redis_env, tmp_path):
    """Item 3 (fine): Ctrl-C, `timeout` or a supervisor signal the worker's whole process group. The
    program, in a group of its own, does not die of it: it finishes within the grace period, the
    next item goes back, nothing is charged (before: killed by SIGINT, charged a failed attempt)."""
    queue = queue_of(redis_server, "group")
    queue.seed([b"first", b"second"])
    env = {**redis_env, "OUT": str(tmp_path / "out"), "PIDFILE": str(tmp_path / "pid")}
    worker = start_jobworker(["fine", "--queue", "group", "--", *SLOW_RECORD], env, start_new_session=True)
    try:
        wait_for_file(tmp_path / "pid")
        os.killpg(worker.pid, signal.SIGINT)
        assert worker.wait(30) == ExitCode.TERMINATED, worker.stderr.read().decode()
    finally:
        worker.kill()
        worker.wait()
    assert (tmp_path / "out").read_text() == "first\n"
    status = queue.status()
    assert (status.done, status.pending, status.failed) == (1, 1, 0)
    assert queue.retrying() == []  # nothing charged


def test_a_program_killed_by_the_signal_stopping_the_worker_is_not_failed(redis_server, redis_env, tmp_path):
    """Item 3: SIGTERM to the worker and to its program (a supervisor signalling every process): the
    program dies of the signal that stops the worker; it was stopped, not failed: handed back
    uncharged, even with --max-attempts 1 (before: charged, and with 1 attempt, failed)."""
    queue = queue_of(redis_server, "both")
    queue.seed([b"only"])
    env = {**redis_env, "OUT": str(tmp_path / "out"), "PIDFILE": str(tmp_path / "pid")}
    program = ["sh", "-c", 'echo $$ > "$PIDFILE"; exec sleep 60']
    worker = start_jobworker(["fine", "--queue", "both", "--max-attempts", "1", "--", *program], env)
    try:
        pid = int(wait_for_file(tmp_path / "pid"))
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        os.kill(pid, signal.SIGTERM)
        assert worker.wait(30) == ExitCode.TERMINATED, worker.stderr.read().decode()
    finally:
        worker.kill()
        worker.wait()
    status = queue.status()
    assert (status.pending, status.failed, status.in_flight) == (1, 0, 0)
    assert queue.retrying() == []


def test_a_signal_to_the_whole_process_group_does_not_fail_the_item_coarse(
    rabbit_server, amqp_env, amqp_queue, tmp_path
):
    """Item 3 (coarse): the same with one message: the program finishes within the grace period and
    the message is acknowledged (before: the program died of SIGINT and the item was charged)."""
    assert run_jobworker(["seed", "--queue", amqp_queue, "first"], amqp_env).returncode == 0
    env = {**amqp_env, "OUT": str(tmp_path / "out"), "PIDFILE": str(tmp_path / "pid")}
    worker = start_jobworker(
        ["coarse", "--queue", amqp_queue, "--", *SLOW_RECORD], env, start_new_session=True
    )
    try:
        wait_for_file(tmp_path / "pid")
        os.killpg(worker.pid, signal.SIGINT)
        assert worker.wait(30) == ExitCode.OK, worker.stderr.read().decode()
    finally:
        worker.kill()
        worker.wait()
    assert (tmp_path / "out").read_text() == "first\n"
    connection = rabbit_server.connection()
    try:
        channel = connection.channel()
        assert channel.queue_declare(amqp_queue, passive=True).method.message_count == 0
        assert channel.queue_declare(f"{amqp_queue}.failed", passive=True).method.message_count == 0
    finally:
        connection.close()


# --- 4. the grace period, kept when the program has children -------------------------------------
# A program whose children ignore SIGTERM and hold its stderr open; it writes their pids to $PIDFILE.
STUBBORN = ["sh", "-c", 'trap "" TERM; sleep 300 & sleep 300 & echo $! > "$PIDFILE"; wait', "sh"]


def chart_default(chart: str, key: str) -> float:
    return yaml.safe_load((REPO_ROOT / "charts" / chart / "values.yaml").read_text())[key]


def test_the_worker_and_the_charts_agree_on_the_grace_period():
    """Item 4: with the defaults, the worker is done (grace period, SIGTERM then SIGKILL to the
    program's group, hand-back) before the kubelet's SIGKILL, in every job chart that has a grace
    period; the indexed worker passes SIGTERM on at once."""
    for chart in ("fine-queue-job", "coarse-queue-job"):
        assert chart_default(chart, "graceSeconds") == DEFAULT_GRACE_SECONDS
        needed = DEFAULT_GRACE_SECONDS + KILL_AFTER_TERM_SECONDS + HAND_BACK_SECONDS
        assert needed <= chart_default(chart, "terminationGracePeriodSeconds")
    assert "graceSeconds" not in yaml.safe_load((REPO_ROOT / "charts/indexed-job/values.yaml").read_text())


@pytest.mark.parametrize("pattern", ["fine", "coarse"])
def test_the_grace_period_is_kept_when_the_program_has_children(request, tmp_path, pattern):
    """Item 4: SIGTERM with the default --grace-seconds; the program's children ignore SIGTERM and
    hold its pipes. At the end of the grace period the program's whole group is stopped and the
    worker exits within the charts' default terminationGracePeriodSeconds, the item handed back
    uncharged and no child left (before: the worker waited for the children's pipe)."""
    env = {"PIDFILE": str(tmp_path / "pid")}
    if pattern == "fine":
        server = request.getfixturevalue("redis_server")
        env |= request.getfixturevalue("redis_env")
        queue_of(server, "grace").seed([b"stubborn"])
        args = ["fine", "--queue", "grace"]
    else:
        rabbit = request.getfixturevalue("rabbit_server")
        env |= request.getfixturevalue("amqp_env")
        name = request.getfixturevalue("amqp_queue")
        assert run_jobworker(["seed", "--queue", name, "stubborn"], env).returncode == 0
        args = ["coarse", "--queue", name]
    limit = chart_default(f"{pattern}-queue-job", "terminationGracePeriodSeconds")
    worker = start_jobworker([*args, "--", *STUBBORN], env)
    try:
        child = int(wait_for_file(tmp_path / "pid"))
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(limit) == ExitCode.TERMINATED, worker.stderr.read().decode()
        assert DEFAULT_GRACE_SECONDS <= time.monotonic() - started < limit
    finally:
        worker.kill()
        worker.wait()
    wait_until(lambda: not alive(child), 5, "the program's child to be gone")
    if pattern == "fine":
        status = queue_of(server, "grace").status()
        assert (status.pending, status.in_flight, status.failed) == (1, 0, 0)
        assert queue_of(server, "grace").retrying() == []
    else:
        connection = rabbit.connection()
        try:
            method, properties, _body = connection.channel().basic_get(name, auto_ack=True)
            assert method is not None
            assert not (properties.headers or {}).get("x-jobworker-attempts")
        finally:
            connection.close()


# --- 5. a foreign value in one of a queue's keys -------------------------------------------------
@versions
def test_a_foreign_value_in_a_queue_key_changes_nothing(redis_server, redis_env, tmp_path):
    """Item 5: `{Q}:done` set by hand to a list. The scripts check every key before they change
    anything: the worker stops with one line, every item is still in the queue, and `status` says
    the same in one line (before: a lease ended half-way, its item in no place; status: traceback)."""
    items = [b"one", b"two", b"three"]
    queue_of(redis_server, "foreign").seed(items)
    client = redis_server.client()
    client.rpush("{foreign}:done", "not a count")
    env = {**redis_env, "RECORD_FILE": str(tmp_path / "record")}
    result = run_jobworker(["fine", "--queue", "foreign", "--handler", "tests.support.handlers:record"], env)
    assert result.returncode == ExitCode.ERROR, result.stderr.decode()
    assert "{foreign}:done holds a list, not a string" in last_line(result)
    assert client.lrange("foreign", 0, -1) == items
    assert read_records(tmp_path / "record") == []
    status = run_jobworker(["status", "--queue", "foreign"], redis_env)
    assert status.returncode == ExitCode.ERROR
    assert "{foreign}:done holds a list" in one_line_error(status)


# --- 6. an empty items file ---------------------------------------------------------------------
def test_an_empty_items_file_is_refused_and_seeds_nothing(redis_server, redis_env, tmp_path):
    """Item 6: an empty items file is refused in one line, and the queue stays as it was, so the
    seed with the real items works (before: sealed with 0 items; the next seed refused as sealed)."""
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "empty.json").write_text("[]")
    for name in ("empty.txt", "empty.json"):
        result = run_jobworker(["seed", "--queue", "late", "--file", str(tmp_path / name)], redis_env)
        assert result.returncode != 0
        assert "holds no items" in one_line_error(result)
    assert queue_of(redis_server, "late").status().state == "none"
    assert run_jobworker(["seed", "--queue", "late", "apple"], redis_env).returncode == 0
    assert queue_of(redis_server, "late").status().pending == 1


# --- 7. the program gets no broker credentials ---------------------------------------------------
DUMP_ENV = [
    sys.executable,
    "-c",
    "import os, sys; open(os.environ['OUT'], 'w').write(repr(dict(os.environb)))",
]


def test_the_program_gets_no_redis_credentials(redis_server, tmp_path):
    """Item 7: neither REDIS_PASSWORD nor a URL with the password reach the program (before: both)."""
    password = redis_server.password
    env = {
        "REDIS_URL": f"redis://:{password}@127.0.0.1:{redis_server.port}/0",
        "REDIS_PASSWORD": password,
        "OUT": str(tmp_path / "env"),
    }
    queue_of(redis_server, "creds").seed([b"x"])
    result = run_jobworker(["fine", "--queue", "creds", "--", *DUMP_ENV], env)
    assert result.returncode == 0, result.stderr.decode()
    seen = (tmp_path / "env").read_text()
    assert password not in seen
    for name in ENV_WITHHELD_FROM_PROGRAM:
        assert f"b'{name}'" not in seen
    assert "b'OUT'" in seen  # the rest of the environment is the program's


def test_the_program_gets_no_rabbitmq_credentials(rabbit_server, amqp_env, amqp_queue, tmp_path):
    """Item 7: AMQP_URL, AMQP_USERNAME and AMQP_PASSWORD do not reach the program (before: they did)."""
    assert run_jobworker(["seed", "--queue", amqp_queue, "x"], amqp_env).returncode == 0
    env = {**amqp_env, "OUT": str(tmp_path / "env")}
    result = run_jobworker(["coarse", "--queue", amqp_queue, "--", *DUMP_ENV], env)
    assert result.returncode == 0, result.stderr.decode()
    seen = (tmp_path / "env").read_text()
    assert rabbit_server.password not in seen
    for name in ENV_WITHHELD_FROM_PROGRAM:
        assert f"b'{name}'" not in seen


# --- 8. no password in messages, no forged log lines ---------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret-pw@127.0.0.1:99999/0",
        "redis://:s3cret-pw@127.0.0.1:abc/0",
        "redis://:s3cret-pw@127.0.0.1:6379/0?socket_timeout=abc",
        "redis://user:s3cret/pw@127.0.0.1:6379/0",
    ],
)
def test_a_bad_redis_url_is_refused_without_its_password(url):
    """Item 8: a bad Redis URL is quoted with its password masked, as the AMQP side does (before:
    the password in the message)."""
    result = run_jobworker(["fine", "--queue", "q", "--", "true"], {"REDIS_URL": url})
    line = one_line_error(result)
    assert result.returncode == ExitCode.USAGE, line
    assert "bad Redis URL" in line
    assert "***" in line
    assert "s3cret" not in line
    assert "pw@" not in line


def test_an_item_cannot_forge_a_log_line(redis_server, redis_env):
    """Item 8: an item with a line break is logged on one line, escaped (before: the text after the
    line break made a log line of its own)."""
    forged = "2026-01-01 00:00:00,000 ERROR jobworker: forged"
    queue_of(redis_server, "forge").seed([f"apple\n{forged}".encode(), b"pear\r\x1b[2Jx"])
    result = run_jobworker(["fine", "--queue", "forge", "--", "true"], redis_env)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stderr.decode().splitlines()
    assert not [line for line in lines if line.startswith(forged)]
    assert any("apple\\n2026-01-01" in line for line in lines)
    assert any("pear\\r\\x1b[2Jx" in line for line in lines)
    assert "\x1b" not in result.stderr.decode()


# --- 9 and 10. every value checked in one place, refused in one line ------------------------------
REFUSED = [
    ("fine", ["--connect-timeout", "inf"], "--connect-timeout / CONNECT_TIMEOUT"),
    ("fine", ["--connect-timeout", "1e300"], "--connect-timeout / CONNECT_TIMEOUT"),
    ("fine", ["--lease-seconds", "nan"], "--lease-seconds / LEASE_SECONDS"),
    ("fine", ["--lease-seconds", "inf"], "--lease-seconds / LEASE_SECONDS"),
    ("fine", ["--lease-seconds", "1e20"], "--lease-seconds / LEASE_SECONDS"),
    ("fine", ["--batch-size", "100000000000000000000"], "--batch-size / BATCH_SIZE"),
    ("fine", ["--wait", "nan"], "--wait / WAIT_SECONDS"),
    ("fine", ["--grace-seconds", "inf"], "--grace-seconds / GRACE_SECONDS"),
    ("fine", ["--max-attempts", "99999999999999999999"], "--max-attempts / MAX_ATTEMPTS"),
    ("coarse", ["--prefetch", "70000", "--drain"], "--prefetch / PREFETCH"),
    ("coarse", ["--idle", "nan", "--drain"], "--idle / IDLE_SECONDS"),
    ("coarse", ["--idle", "inf", "--drain"], "--idle / IDLE_SECONDS"),
    ("coarse", ["--consumer-timeout", "inf"], "--consumer-timeout / CONSUMER_TIMEOUT"),
    ("coarse", ["--consumer-timeout", "nan"], "--consumer-timeout / CONSUMER_TIMEOUT"),
    ("seed", ["--consumer-timeout", "1e300", "--amqp-url", "amqp://u:p@127.0.0.1:1/%2F", "a"],
     "--consumer-timeout / CONSUMER_TIMEOUT"),
]  # fmt: skip
SERVERS = {"REDIS_URL": "redis://127.0.0.1:1/0", "AMQP_URL": "amqp://127.0.0.1:1/%2F"} | {
    "AMQP_USERNAME": "u",
    "AMQP_PASSWORD": "p",
}


@pytest.mark.parametrize(("subcommand", "args", "names"), REFUSED, ids=[" ".join(c[1][:2]) for c in REFUSED])
def test_every_number_has_a_range_on_the_command_line(subcommand, args, names):
    """Item 9: inf, nan and numbers out of range are refused at once in one line naming the option
    and its variable (before: a spin at 99% CPU, a traceback, or a worker that never drains)."""
    result = run_jobworker([subcommand, "--queue", "q", *args, "--", "true"], SERVERS, timeout=20)
    line = one_line_error(result)
    assert result.returncode == ExitCode.USAGE, line
    assert names in line


@pytest.mark.parametrize(("subcommand", "args", "names"), REFUSED, ids=[" ".join(c[1][:2]) for c in REFUSED])
def test_every_number_has_a_range_in_the_environment(subcommand, args, names):
    """Item 9: the same values from the variables, as the charts give them."""
    _option, value, *rest = args
    variable = names.split(" / ")[1]
    result = run_jobworker(
        [subcommand, "--queue", "q", *rest, "--", "true"], {**SERVERS, variable: value}, timeout=20
    )
    line = one_line_error(result)
    assert result.returncode == ExitCode.USAGE, line
    assert names in line


def test_every_numeric_option_comes_from_the_one_table():
    """Item 9: every option of every subcommand that takes a number is made from a Setting of
    settings.SETTINGS, which holds its range (no hand-made number parsing left)."""
    from jobworker import settings  # noqa: PLC0415
    from jobworker.cli import build_parser  # noqa: PLC0415

    parsers = {id(setting.parse.__self__): setting for setting in settings.SETTINGS}
    numeric = {s.option for s in settings.SETTINGS if isinstance(s.kind, settings.Number)}
    found = set()
    for name, parser in build_parser({})._subparsers._group_actions[0].choices.items():
        for action in parser._actions:
            option = max(action.option_strings, key=len, default=None)
            if option in numeric:
                setting = getattr(action.type, "__self__", None)
                assert id(setting) in parsers, f"{name} {option} is not made from the table"
                found.add(option)
    assert found == numeric


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LOG_LEVEL", "verbose"), ("LOG_FORMAT", "xml"), ("ITEM_DELIVERY", "bogus"), ("WAIT_FOR_SEAL", "maybe")],
)
def test_a_bad_word_in_a_variable_is_refused_naming_it(variable, value):
    """Item 10: LOG_LEVEL=verbose (before: a traceback), LOG_FORMAT=xml (before: accepted),
    ITEM_DELIVERY=bogus (before: refused without naming the variable)."""
    result = run_jobworker(["fine", "--queue", "q", "--", "true"], {**SERVERS, variable: value})
    line = one_line_error(result)
    assert result.returncode == ExitCode.USAGE, line
    assert f"/ {variable})" in line
    assert repr(value) in line


# --- 11. text that is not valid UTF-8 ------------------------------------------------------------
@pytest.mark.parametrize(
    ("subcommand", "extra"),
    [("fine", ["--", "true"]), ("coarse", ["--", "true"]), ("seed", ["a"]), ("status", []), ("seal", []),
     ("requeue-failed", [])],
)  # fmt: skip
@pytest.mark.parametrize("where", ["argv", "env"])
def test_a_queue_name_that_is_not_utf8_is_one_line(subcommand, extra, where):
    """Item 11: a queue name with bytes that are not UTF-8, from argv or QUEUE_NAME, is refused in
    one line by every subcommand (before: a traceback in each)."""
    name = os.fsdecode(b"q\xff\xfe")
    args, env = ([subcommand, "--queue", name, *extra], SERVERS) if where == "argv" else (
        [subcommand, *extra], {**SERVERS, "QUEUE_NAME": name})  # fmt: skip
    result = run_jobworker(args, env)
    line = one_line_error(result)
    assert result.returncode == ExitCode.USAGE, line
    assert "is not valid UTF-8 text (--queue / QUEUE_NAME)" in line


@pytest.mark.parametrize("subcommand", ["seed", "indexed"])
def test_a_json_items_file_with_a_lone_surrogate_is_one_line(subcommand, tmp_path):
    """Item 11: "\\ud800" in a JSON items file spells no UTF-8 text: one line (before: a traceback)."""
    items = tmp_path / "items.json"
    items.write_text('["fine", "bad \\ud800 item"]')
    args = (
        ["seed", "--queue", "q", "--file", str(items)]
        if subcommand == "seed"
        else ["indexed", "--index", "1", "--items-file", str(items), "--", "cat"]
    )
    result = run_jobworker(args, SERVERS)
    line = one_line_error(result)
    assert result.returncode == ExitCode.ERROR, line
    assert "item 1 is not valid Unicode text" in line
    assert "\\ud800" in line


# --- 12. an endpoint that is not the broker --------------------------------------------------------
@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (the kernel accepts them: nobody reads)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@versions
def test_a_redis_url_to_rabbitmqs_port_is_one_line(rabbit_server):
    """Item 12: the Redis worker pointed at RabbitMQ: one line, at once, with the default
    --connect-timeout (before: a traceback)."""
    started = time.monotonic()
    result = run_jobworker(
        ["fine", "--queue", "q", "--", "true"], {"REDIS_URL": f"redis://127.0.0.1:{rabbit_server.port}/0"}
    )
    assert result.returncode == ExitCode.ERROR
    assert "does not answer as Redis does" in last_line(result)
    assert "Traceback" not in result.stderr.decode()
    assert time.monotonic() - started < 20


@versions
def test_an_amqp_url_to_redis_port_is_one_line_within_connect_timeout(redis_server):
    """Item 12: the RabbitMQ worker pointed at Redis (which waits for the rest of a command that never
    comes): one line within --connect-timeout (before: a traceback after pika's own 15 s)."""
    env = {
        "AMQP_URL": f"amqp://127.0.0.1:{redis_server.port}/%2F",
        "AMQP_USERNAME": "u",
        "AMQP_PASSWORD": "p",
    }
    started = time.monotonic()
    result = run_jobworker(["coarse", "--queue", "q", "--connect-timeout", "3", "--", "true"], env)
    assert result.returncode == ExitCode.ERROR
    assert "did not answer the AMQP handshake" in last_line(result)
    assert "Traceback" not in result.stderr.decode()
    assert time.monotonic() - started < 12


@pytest.mark.parametrize("pattern", ["fine", "coarse"])
def test_a_port_that_never_answers_is_one_line_within_connect_timeout(silent_port, pattern):
    """Item 12: a port that accepts and never answers: one line within --connect-timeout (before:
    the Redis worker waited for ever; the AMQP one gave a traceback after 15 s)."""
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{silent_port}/0",
        "AMQP_URL": f"amqp://127.0.0.1:{silent_port}/%2F",
    }
    env |= {"AMQP_USERNAME": "u", "AMQP_PASSWORD": "p"}
    started = time.monotonic()
    result = run_jobworker([pattern, "--queue", "q", "--connect-timeout", "2", "--", "true"], env, timeout=30)
    assert result.returncode == ExitCode.ERROR
    assert "after 2 s" in last_line(result)
    assert "Traceback" not in result.stderr.decode()
    assert time.monotonic() - started < 12
