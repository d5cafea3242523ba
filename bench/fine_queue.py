#!/usr/bin/env python3
"""Throughput of the fine-grained work queue against the Kubernetes docs' pattern, in one run.

Starts its own redis-server, then for each contender pushes N items and runs K worker processes
until the queue is drained, timing from the launch of the workers to the exit of the last one
(interpreter start-up included for both):

  baseline   the docs' rediswq.py pattern: per item one BRPOPLPUSH, SETEX, LREM, DEL and the two
             LLEN of its empty() check, one round trip each (devkit/docs_protocol.py)
  jobworker  `jobworker fine --handler jobworker.handlers:noop`: batched leases, one round trip
             per batch

Each contender also runs on an empty queue in every round; the median of those times (process
start-up, connecting, the end-of-queue check) is reported as start-up, and the rate after start-up
is N / (time - start-up). The headline ratio is of the plain wall-clock rates, start-up included.

--compare REV adds a third contender, `jobworker fine` as of a git revision (its
images/jobworker/src, extracted with `git archive`), run in the same rounds as the work tree's and
right next to it, so that a change is measured against what it changes on the same machine at the
same time; the report gives the change in time, the median over the rounds of the two runs' ratio.

Usage: bench/fine_queue.py [--items N] [--workers K] [--repeat R] [--compare REV] [--json]
"""

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import redis  # noqa: E402

from devkit.docs_protocol import drain_like_the_docs  # noqa: E402
from devkit.revisions import check_imported_from, jobworker_source  # noqa: E402
from devkit.servers import RedisServer  # noqa: E402
from jobworker.redisqueue import RedisQueue  # noqa: E402


def machine() -> dict[str, str | int]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
        "redis": redis_server_version(),
    }


def redis_server_version() -> str:
    output = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True).stdout
    return next((part.split("=", 1)[1] for part in output.split() if part.startswith("v=")), output.strip())


def worker_env(url: str, source: Path | None = None) -> dict[str, str]:
    """`source`: a directory holding another jobworker package, imported instead of the work tree's."""
    path = [str(source)] if source else []
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*path, str(REPO_ROOT)]), "REDIS_URL": url}


def run_workers(commands: list[list[str]], env: dict[str, str]) -> float:
    started = time.perf_counter()
    workers = [subprocess.Popen(command, env=env) for command in commands]
    codes = [worker.wait() for worker in workers]
    elapsed = time.perf_counter() - started
    if any(codes):
        sys.exit(f"fine_queue: a worker failed with {codes}")
    return elapsed


def bench_baseline(client: redis.Redis, url: str, items: list[bytes], workers: int) -> float:
    client.flushall()
    if items:
        client.rpush("bench", *items)
    command = [sys.executable, __file__, "--baseline-worker", "bench"]
    elapsed = run_workers([command] * workers, worker_env(url))
    if client.llen("bench") or client.llen("bench:processing"):
        sys.exit("fine_queue: the baseline left items behind")
    return elapsed


def bench_jobworker(
    client: redis.Redis, url: str, items: list[bytes], workers: int, source: Path | None = None
) -> float:
    client.flushall()
    queue = RedisQueue(client, "bench")
    queue.seed(items)
    command = [
        sys.executable,
        "-m",
        "jobworker",
        "fine",
        "--queue",
        "bench",
        "--log-level",
        "WARNING",
        "--handler",
        "jobworker.handlers:noop",
    ]
    elapsed = run_workers([command] * workers, worker_env(url, source))
    if queue.status().done != len(items):
        sys.exit(f"fine_queue: jobworker finished {queue.status().done} of {len(items)} items")
    return elapsed


def baseline_worker(queue: str) -> None:
    """One worker process of the baseline: the docs' loop with an empty item function."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    drain_like_the_docs(client, queue, lambda _item: None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each contender; the median is reported"
    )
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="also run jobworker as of this git revision (e.g. HEAD), in the same rounds",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--baseline-worker", metavar="QUEUE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_worker:
        baseline_worker(args.baseline_worker)
        return

    items = [b"item-%08d" % n for n in range(args.items)]
    contenders = {"baseline": bench_baseline, "jobworker": bench_jobworker}
    compared = f"jobworker@{args.compare}" if args.compare else None
    with tempfile.TemporaryDirectory() as directory, RedisServer(Path(directory)) as server:
        if compared:
            source = jobworker_source(args.compare, Path(directory) / "compare")
            check_imported_from(source, sys.executable, worker_env(server.url, source))
            contenders[compared] = functools.partial(bench_jobworker, source=source)
        results: dict[str, list[float]] = {name: [] for name in contenders}
        startups: dict[str, list[float]] = {name: [] for name in contenders}
        client = server.client()
        for round_number in range(args.repeat):
            # The baseline first; the others back to back, taking turns at going first, so that
            # each pair of their runs shares the machine's state of the moment.
            rest = list(contenders)[1:]
            shift = round_number % len(rest)
            for name in ["baseline", *rest[shift:], *rest[:shift]]:
                startups[name].append(contenders[name](client, server.url, [], args.workers))
                results[name].append(contenders[name](client, server.url, items, args.workers))
        startup = {name: statistics.median(times) for name, times in startups.items()}

    report: dict = {
        "benchmark": "fine_queue",
        "items": args.items,
        "workers": args.workers,
        "repeat": args.repeat,
        "machine": machine(),
    }
    for name, times in results.items():
        seconds = statistics.median(times)
        report[name] = {
            "seconds": round(seconds, 3),
            "items_per_second": round(args.items / seconds),
            "startup_seconds": round(startup[name], 3),
            "items_per_second_after_startup": round(args.items / max(seconds - startup[name], 1e-3)),
        }
    jobworker, baseline = report["jobworker"], report["baseline"]
    report["ratio"] = round(jobworker["items_per_second"] / baseline["items_per_second"], 1)
    report["ratio_after_startup"] = round(
        jobworker["items_per_second_after_startup"] / baseline["items_per_second_after_startup"], 1
    )
    if compared:
        # The work tree's time against the revision's, round by round (the two ran back to back),
        # the median of the rounds: + is slower.
        ours, theirs = results["jobworker"], results[compared]
        ours_up, theirs_up = startups["jobworker"], startups[compared]
        report["compared_with"] = args.compare
        report["time_change_percent"] = round(
            100 * (statistics.median(a / b for a, b in zip(ours, theirs, strict=True)) - 1), 1
        )
        after_startup = [
            (a - a_up) / max(b - b_up, 1e-3)
            for a, b, a_up, b_up in zip(ours, theirs, ours_up, theirs_up, strict=True)
        ]
        report["time_change_percent_after_startup"] = round(100 * (statistics.median(after_startup) - 1), 1)
    if args.json:
        print(json.dumps(report))
        return
    where = report["machine"]
    print(
        f"fine_queue: {args.items} items, {args.workers} workers, median of {args.repeat} runs "
        f"({where['cpu']}, {where['cores']} cores, redis {where['redis']})"
    )
    width = max(map(len, results))
    for name in results:
        entry = report[name]
        print(
            f"  {name:{width}} {entry['items_per_second']:>10,} items/s in {entry['seconds']} s "
            f"({entry['items_per_second_after_startup']:,} after {entry['startup_seconds']} s of start-up)"
        )
    print(f"  ratio      {report['ratio']:>10}x  ({report['ratio_after_startup']}x after start-up)")
    if compared:
        print(
            f"  the work tree against {args.compare}: {report['time_change_percent']:+}% time "
            f"({report['time_change_percent_after_startup']:+}% after start-up)"
        )


if __name__ == "__main__":
    main()
