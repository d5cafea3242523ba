"""Benchmark of the coarse-grained work queue against the Kubernetes docs' amqp-tools, in one run.

- Per message: what one `jobworker coarse` process costs (start, connect, consume one message,
  run `cat`, acknowledge, exit), against `amqp-consume -c 1 cat`, the docs' worker. Two floors
  run with them: the worker's interpreter doing nothing (`python -c pass`) and importing pika
  (`python -c 'import pika'`), what any Python worker and any pika worker pay before their first
  round trip, so that the table shows how much of the gap a Python worker with pika can close.
  Runs of all four alternate, so that all see the same machine load.
- Seeding: `jobworker seed` filling a queue (one process, persistent messages, transactions),
  against one `amqp-publish -p` process per item.

--compare REV adds `jobworker coarse` as of a git revision (`--compare HEAD`: before your change) to
the per-message runs, each time right next to the work tree's (the two take turns at going
first), and reports the change in time as the median over the messages of the two runs' ratio: a
change of a few milliseconds in the worker's start shows on a shared machine, where two separate
runs of this benchmark differ by more than that.

It starts its own rabbitmq-server (the tests' RabbitServer: a temporary node) and prints a table,
or one JSON object with --json.

    python bench/coarse_queue.py [--json] [--messages N] [--seed-items N] [--compare REV]
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for devkit

from devkit.revisions import PACKAGE_SOURCE, REPO_ROOT, check_imported_from, jobworker_source
from devkit.servers import RabbitServer

COMPARED = "jobworker_coarse_compared"  # the per-message entry of `jobworker coarse` as of --compare


def jobworker_command() -> list[str]:
    """The installed console script, as an image runs it (python -m jobworker as a fallback)."""
    script = Path(sys.executable).with_name("jobworker")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobworker"]


def run(argv: Sequence[str], env: dict[str, str] | None = None, stdin: bytes | None = None) -> float:
    """Run a command to completion; its wall-clock seconds. A failure stops the benchmark."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, input=stdin, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return seconds


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def worker_env(server: RabbitServer, source: Path | None = None) -> dict[str, str]:
    """The broker's variables and a plain PATH; `source`: the directory to import jobworker from."""
    env = {**server.env(), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    return {**env, "PYTHONPATH": str(source)} if source else env


def ready(server: RabbitServer, queue: str) -> int:
    with server.connection() as connection:
        return connection.channel().queue_declare(queue, passive=True).method.message_count


def seeding_seconds(
    server: RabbitServer, scratch: Path, seed_items: int, messages: int
) -> tuple[float, float]:
    """`jobworker seed` of `seed_items` items, and `amqp-publish -p` of `messages` items, one process
    each: the seconds of both, after one warm-up of each (page cache, broker code paths)."""
    jobworker, env, url = jobworker_command(), worker_env(server), server.url_with_credentials
    items = [f"item-{n:06d}" for n in range(max(messages, seed_items))]
    items_file = scratch / "seed.txt"
    items_file.write_text("\n".join(items[:seed_items]) + "\n")
    run([*jobworker, "seed", "--queue", "warm-up", "x"], env)
    run(["amqp-publish", "--url", url, "-r", "warm-up", "-p", "-b", "x"])
    seed_seconds = run([*jobworker, "seed", "--queue", "seeded", "--file", str(items_file)], env)
    if ready(server, "seeded") != seed_items:
        raise SystemExit("jobworker seed did not publish every item")
    run(["amqp-declare-queue", "--url", url, "-d", "-q", "published"])
    publish_seconds = sum(
        run(["amqp-publish", "--url", url, "-r", "published", "-p", "-b", item]) for item in items[:messages]
    )
    if ready(server, "published") != messages:
        raise SystemExit("amqp-publish did not publish every item")
    return seed_seconds, publish_seconds


def per_message_seconds(
    server: RabbitServer, scratch: Path, messages: int, compare: str | None
) -> dict[str, list[float]]:
    """Each command's seconds, one process per message: the workers each on a queue of their own,
    then the floors. One untimed round first (bytecode, page cache), then the rounds, the commands
    one after another in each."""
    jobworker, env = jobworker_command(), worker_env(server)
    coarse = [*jobworker, "coarse", "--wait", "10", "--queue"]
    # Compared, both import jobworker from PYTHONPATH: they differ in nothing but the package.
    work_tree = REPO_ROOT / PACKAGE_SOURCE if compare else None
    amqp_consume = ["amqp-consume", "--url", server.url_with_credentials, "-c", "1", "-q", "amqp_consume"]
    commands = {
        "jobworker_coarse": ([*coarse, "jobworker_coarse", "--", "cat"], worker_env(server, work_tree)),
        "amqp_consume": ([*amqp_consume, "cat"], env),
    }
    if compare:
        source = jobworker_source(compare, scratch / "compared")
        compared_env = worker_env(server, source)
        check_imported_from(source, sys.executable, compared_env)
        commands[COMPARED] = ([*coarse, COMPARED, "--", "cat"], compared_env)
    workers = list(commands)  # each consumes the queue of its own name
    items_file = scratch / "messages.txt"
    items_file.write_text("".join(f"item-{n:06d}\n" for n in range(messages + 1)))
    for queue in workers:
        run([*jobworker, "seed", "--queue", queue, "--file", str(items_file)], env)
    commands["python_alone"] = ([sys.executable, "-c", "pass"], env)
    commands["python_import_pika"] = ([sys.executable, "-c", "import pika"], env)

    seconds: dict[str, list[float]] = {name: [] for name in commands}
    # The work tree's worker and the revision's run back to back, taking turns at going first.
    pair = ["jobworker_coarse", COMPARED] if compare else ["jobworker_coarse"]
    rest = [name for name in commands if name not in pair]
    for round_number in range(messages + 1):
        for name in (pair if round_number % 2 == 0 else pair[::-1]) + rest:
            argv, command_env = commands[name]
            elapsed = run(argv, command_env)
            if round_number:
                seconds[name].append(elapsed)
    if any(ready(server, name) for name in workers):
        raise SystemExit("a worker left messages behind")
    return seconds


def measure(messages: int, seed_items: int, compare: str | None = None) -> dict:
    with RabbitServer() as server, tempfile.TemporaryDirectory() as scratch:
        with server.connection() as connection:
            version = str(connection._impl.server_properties.get("version", "?"))  # pika keeps it there
        seed_seconds, publish_seconds = seeding_seconds(server, Path(scratch), seed_items, messages)
        seconds = per_message_seconds(server, Path(scratch), messages, compare)

    per_message_ms = {name: round(sum(times) / messages * 1000, 1) for name, times in seconds.items()}
    seed_rate = seed_items / seed_seconds
    publish_rate = messages / publish_seconds
    result = {
        "benchmark": "coarse_queue",
        "date": datetime.date.today().isoformat(),
        "machine": {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0))},
        "broker": f"rabbitmq-server {version}",
        "messages": messages,
        "seed_items": seed_items,
        "python": platform.python_version(),
        "pika": importlib.metadata.version("pika"),  # it ran `import pika` above
        "per_message_ms": per_message_ms,
        "per_message_ratio": round(per_message_ms["jobworker_coarse"] / per_message_ms["amqp_consume"], 2),
        "seed_items_per_second": {
            "jobworker_seed": round(seed_rate),
            "amqp_publish_per_item": round(publish_rate),
        },
        "seed_ratio": round(seed_rate / publish_rate, 1),
    }
    if compare:
        # The work tree's time against the revision's, message by message (the two ran back to
        # back), the median over the messages: + is slower.
        pairs = zip(seconds["jobworker_coarse"], seconds[COMPARED], strict=True)
        ratios = [ours / theirs for ours, theirs in pairs]
        result["compared_with"] = compare
        result["time_change_percent"] = round(100 * (statistics.median(ratios) - 1), 1)
    return result


def print_table(result: dict) -> None:
    per, seed = result["per_message_ms"], result["seed_items_per_second"]
    machine = result["machine"]
    print(f"coarse queue, {result['broker']}, {machine['cpu']} ({machine['cores']} cores), {result['date']}")
    print(f"per message, {result['messages']} processes each (start, connect, take one, run cat, ack):")
    print(f"  jobworker coarse -- cat     {per['jobworker_coarse']:8.1f} ms")
    print(f"  amqp-consume -c 1 cat       {per['amqp_consume']:8.1f} ms")
    print(f"  ratio                       {result['per_message_ratio']:8.2f} x")
    if "compared_with" in result:
        print(f"  jobworker coarse as of {result['compared_with']}: {per[COMPARED]:.1f} ms")
        change = result["time_change_percent"]
        print(f"  the work tree against it: {change:+} % time (median of the messages)")
    print(f"floors, Python {result['python']} (the worker's interpreter), pika {result['pika']}:")
    print(f"  python -c pass              {per['python_alone']:8.1f} ms")
    print(f"  python -c 'import pika'     {per['python_import_pika']:8.1f} ms")
    print("seeding, persistent messages:")
    print(f"  jobworker seed ({result['seed_items']} items)   {seed['jobworker_seed']:8d} items/s")
    print(f"  amqp-publish -p per item    {seed['amqp_publish_per_item']:8d} items/s")
    print(f"  ratio                       {result['seed_ratio']:8.1f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--messages", type=int, default=200, help="worker processes per tool (default 200)")
    parser.add_argument(
        "--seed-items", type=int, default=20000, help="items for jobworker seed (default 20000)"
    )
    parser.add_argument(
        "--compare", metavar="REV", help="also run jobworker coarse as of this git revision (e.g. HEAD)"
    )
    args = parser.parse_args()
    if args.messages < 1 or args.seed_items < 1:
        parser.error("--messages and --seed-items must be at least 1")
    for tool in ("amqp-consume", "amqp-publish", "amqp-declare-queue"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (make system-deps)")
    result = measure(args.messages, args.seed_items, args.compare)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
