#!/usr/bin/env python3
"""How long a worker process takes in its image, with the standard library's bytecode that the
image brings, against the same image without it.

The official python images ship no bytecode of the standard library (their Dockerfile deletes every
*.pyc), and the charts run the workers on a read-only root, where Python cannot cache what it
compiles: without bytecode in the image, every worker start compiles each standard module it
imports again. images/Dockerfile writes that bytecode at build time; the baseline here is each
built image with the standard library's *.pyc deleted again, which is what the images were before.

Each worker runs as its chart runs it (devkit.docker's restricted `docker run`), on the
host network against a redis-server and a rabbitmq-server of its own (devkit.servers), with trivial
work (`true`):
- fine-queue-worker: `jobworker fine --seed-file` on a queue that the first run seeds and finishes,
  so that the runs measured are workers that start, seed nothing, find the queue finished and exit;
- coarse-queue-worker: `jobworker coarse --seed-file -- true`, one message per run (a pod per item);
- indexed-worker: `jobworker indexed --index N --items-file -- true`.
A timer in the image's own Python runs the worker --runs times per container, from exec to exit, so
that the container's own start is left out; containers of the two variants alternate, --rounds
times, after one warm-up container each. It prints a table, or one JSON object with --json.

Usage: bench/worker_start.py [--json] [--rounds N] [--runs N] [IMAGE_REF...]
(`make bench-images` builds the images and passes their references)
"""

import argparse
import datetime
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.coarse_queue import cpu_model  # noqa: E402
from bench.worker_resources import image, items_file  # noqa: E402
from devkit.docker import DOCKER, Mount, docker_run_argv  # noqa: E402
from devkit.servers import RabbitServer, RedisServer  # noqa: E402

WORKERS = ("fine-queue-worker", "coarse-queue-worker", "indexed-worker")
ITEMS = "/items/items.json"  # where the items file is mounted
# Runs the argument lists of argv[1] (JSON) one after the other and prints their wall times (JSON).
TIMER = """
import json, subprocess, sys, time
seconds = []
for argv in json.loads(sys.argv[1]):
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds.append(time.perf_counter() - started)
    if done.returncode:
        sys.exit(f"{' '.join(argv)}: status {done.returncode}: {done.stderr.decode()[-800:]}")
print(json.dumps(seconds))
"""
# The standard library's bytecode files in an image, counted by its own Python.
COUNT_STDLIB_PYC = (
    "import pathlib, sysconfig; "
    "print(sum(1 for _ in pathlib.Path(sysconfig.get_path('stdlib')).rglob('*.pyc')))"
)
DELETE_STDLIB_PYC = (
    "find \"$(python3 -c 'import sysconfig; print(sysconfig.get_path(\"stdlib\"))')\" -name '*.pyc' -delete"
)


@dataclass(frozen=True)
class Worker:
    """One image's worker: its environment (per variant: a queue of its own) and its runs."""

    name: str
    env: Callable[[str], dict[str, str]]
    argvs: Callable[[int], list[list[str]]]  # the argument lists of this many runs


def workers(redis_url: str, amqp_env: dict[str, str]) -> dict[str, Worker]:
    return {
        "fine-queue-worker": Worker(
            "fine-queue-worker",
            lambda variant: {"REDIS_URL": redis_url, "QUEUE_NAME": f"fine-{variant}"},
            lambda runs: [["jobworker", "fine", "--seed-file", ITEMS, "--", "true"]] * runs,
        ),
        "coarse-queue-worker": Worker(
            "coarse-queue-worker",
            lambda variant: {**amqp_env, "QUEUE_NAME": f"coarse-{variant}"},
            lambda runs: [["jobworker", "coarse", "--seed-file", ITEMS, "--", "true"]] * runs,
        ),
        "indexed-worker": Worker(
            "indexed-worker",
            lambda variant: {},
            lambda runs: [
                ["jobworker", "indexed", "--index", str(index), "--items-file", ITEMS, "--", "true"]
                for index in range(runs)
            ],
        ),
    }


def docker(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run([DOCKER, *args], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"worker_start: docker {args[0]} failed: {result.stderr.strip()[-1500:]}")
    return result.stdout.strip()


@contextmanager
def without_stdlib_bytecode(reference: str) -> Iterator[str]:
    """`reference` with its standard library's *.pyc deleted, as a temporary image."""
    user = docker("image", "inspect", "--format", "{{.Config.User}}", reference)
    tag = f"jobworker-bench/without-stdlib-bytecode:{secrets.token_hex(4)}"
    dockerfile = f"FROM {reference}\nUSER 0\nRUN {DELETE_STDLIB_PYC}\nUSER {user}\n"
    docker("build", "--quiet", "--tag", tag, "-", stdin=dockerfile)
    try:
        yield tag
    finally:
        docker("rmi", "--force", tag)


def stdlib_pyc_files(reference: str) -> int:
    return int(docker("run", "--rm", "--entrypoint", "python3", reference, "-c", COUNT_STDLIB_PYC))


def timed_runs(reference: str, worker: Worker, variant: str, items: Path, runs: int) -> list[float]:
    """The wall seconds of `runs` worker processes in one container of `reference`."""
    argv = docker_run_argv(
        reference,
        env=worker.env(variant),
        command=["python3", "-c", TIMER, json.dumps(worker.argvs(runs))],
        mounts=[Mount(items, ITEMS)],
        user="65532",
    )
    return json.loads(docker(*argv[1:], stdin=""))


def measure(references: dict[str, str], rounds: int, runs: int) -> dict:
    results = []
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        redis_server = stack.enter_context(RedisServer(scratch))
        rabbit_server = stack.enter_context(RabbitServer())
        by_name = workers(redis_server.url, rabbit_server.env())
        # Enough items for every coarse run (one message each) and every index.
        items = stack.enter_context(items_file((rounds + 1) * runs))
        for name, built in references.items():
            worker = by_name[name]
            variants = {"with": built, "without": stack.enter_context(without_stdlib_bytecode(built))}
            seconds: dict[str, list[float]] = {"with": [], "without": []}
            for variant, reference in variants.items():
                timed_runs(reference, worker, variant, items, runs)  # warm-up; fine: the seed
            for round_number in range(rounds):
                order = list(variants) if round_number % 2 == 0 else list(reversed(variants))
                for variant in order:
                    seconds[variant] += timed_runs(variants[variant], worker, variant, items, runs)
            with_ms, without_ms = (statistics.median(seconds[v]) * 1000 for v in ("with", "without"))
            results.append(
                {
                    "image": name,
                    "reference": built,
                    "runs": len(seconds["with"]),
                    "median_ms_with_stdlib_bytecode": round(with_ms, 1),
                    "median_ms_without_stdlib_bytecode": round(without_ms, 1),
                    "ratio_without_to_with": round(without_ms / with_ms, 2),
                    "stdlib_pyc_files": {v: stdlib_pyc_files(ref) for v, ref in variants.items()},
                }
            )
        python = docker("run", "--rm", "--entrypoint", "python3", next(iter(references.values())), "-V")
        base = docker(
            "image", "inspect", "--format",
            '{{index .Config.Labels "org.opencontainers.image.base.name"}}', next(iter(references.values())),
        )  # fmt: skip
    return {
        "benchmark": "worker_start",
        "date": datetime.date.today().isoformat(),
        "machine": {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0))},
        "python": python,
        "base": base,
        "workers": results,
    }


def print_table(result: dict) -> None:
    machine = result["machine"]
    print(
        f"worker start in its image, {result['python']} on {result['base']}, "
        f"{machine['cpu']} ({machine['cores']} cores), {result['date']}"
    )
    print(f"{'image':22} {'runs':>5} {'with stdlib pyc':>16} {'without':>10} {'ratio':>6}")
    for worker in result["workers"]:
        print(
            f"{worker['image']:22} {worker['runs']:5} {worker['median_ms_with_stdlib_bytecode']:13.1f} ms "
            f"{worker['median_ms_without_stdlib_bytecode']:7.1f} ms {worker['ratio_without_to_with']:5.2f}x"
        )


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=positive, default=5, help="containers per variant (default 5)")
    parser.add_argument("--runs", type=positive, default=10, help="worker runs per container (default 10)")
    parser.add_argument("references", nargs="*", help="the images (default: `make image-refs`)")
    args = parser.parse_args(argv)
    references = {}
    for reference in args.references or [image(name) for name in WORKERS]:
        name = reference.rsplit("/", 1)[-1].split(":", 1)[0]
        if name not in WORKERS:
            parser.error(f"{reference}: not a worker image ({', '.join(WORKERS)})")
        references[name] = reference
    result = measure(references, args.rounds, args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
