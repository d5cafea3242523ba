#!/usr/bin/env python3
"""What each container of the worker images uses: peak memory and CPU time, as the charts run them.

Each role runs once in its image (`make images`), with the charts' restrictions (read-only root,
a tmpfs /tmp, user 65532) and trivial work per item (the echo handler, or a small Python program per
item as the docs' own workers are: the container holds the worker and the program), against a
Redis or RabbitMQ of its own on this machine (devkit.servers); the container reads its own cgroup as
it ends: the peak of its memory (cgroup v1 memory.max_usage_in_bytes, v2 memory.peak) and its CPU
time. The charts' default memory requests and limits are set from these numbers
(tests/test_chart_resources.py keeps them within 2x of the peaks).

Usage: bench/worker_resources.py [--json]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devkit.docker import Mount, docker_run_argv  # noqa: E402
from devkit.indexed import base64_lines  # noqa: E402
from devkit.servers import RabbitServer, RedisServer  # noqa: E402

FINE_ITEMS = 20_000  # the largest run of bench/cluster_jobs.py
COMMAND_ITEMS = 200  # a program per item
COARSE_ITEMS = 100
# Printed by the container after its role's command: its cgroup's peak memory and CPU time.
MEASURE = """
started=$(date +%s%N)
"$@" >/dev/null; status=$?
ended=$(date +%s%N)
if [ -e /sys/fs/cgroup/memory.peak ]; then peak=$(cat /sys/fs/cgroup/memory.peak)
  cpu=$(sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat)000
else peak=$(cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes)
  cpu=$(cat /sys/fs/cgroup/cpuacct/cpuacct.usage); fi
echo "measured $peak $cpu $((ended - started))" >&2
exit $status
"""


@dataclass
class Usage:
    role: str
    image: str
    peak_bytes: int
    cpu_seconds: float
    seconds: float  # the command's wall time (after the container started)
    items: int

    @property
    def cores(self) -> float:
        """The CPU it used on average while it ran."""
        return self.cpu_seconds / self.seconds if self.seconds else 0.0


def image(name: str) -> str:
    refs = subprocess.run(["make", "-s", "image-refs"], cwd=REPO, capture_output=True, text=True, check=True)
    return next(ref for ref in refs.stdout.split() if f"/{name}:" in ref)


@dataclass(frozen=True)
class Role:
    """A container of a chart's pod: its name here, its image, its command and environment."""

    name: str
    image: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


def run(role: Role, env: dict[str, str], items_file: Path, items: int) -> Usage:
    reference = image(role.image)
    command = docker_run_argv(
        reference,
        env={**env, **dict(role.env)},
        command=["sh", "-c", MEASURE, "sh", *role.command],
        mounts=[Mount(items_file, f"/items/{items_file.name}")],
        user="65532",
    )
    result = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900, check=False
    )
    measured = [line for line in result.stderr.splitlines() if line.startswith("measured ")]
    if result.returncode != 0 or not measured:
        raise SystemExit(
            f"worker_resources: {role.name} failed ({result.returncode}):\n{result.stderr[-2000:]}"
        )
    _, peak, cpu, wall = measured[-1].split()
    return Usage(role.name, reference, int(peak), int(cpu) / 1e9, int(wall) / 1e9, items)


@contextmanager
def items_file(count: int, by_index: bool = False) -> Iterator[Path]:
    """The items as the charts hold them: a JSON array, or (by_index) indexed-job's base64 lines."""
    items = [f"item-{number:06}" for number in range(count)]
    with tempfile.TemporaryDirectory() as directory:
        if by_index:
            path = Path(directory) / "items.b64"
            path.write_text(base64_lines(item.encode() for item in items))
        else:
            path = Path(directory) / "items.json"
            path.write_text(json.dumps(items))
        path.parent.chmod(0o755)
        path.chmod(0o644)
        yield path


SEED_FILE = ("--seed-file", "/items/items.json")
# The program a command runs per item: a small Python program, as the docs' own workers are.
PROGRAM = ("--", "python3", "-c", "import sys; sys.stdout.write(sys.stdin.read())")
# The charts' workers seed the Job's items before they work (the first pod pushes or publishes them).
ROLES = {
    "fine worker, handler": Role(
        "fine worker, handler",
        "fine-queue-worker",
        ("jobworker", "fine", *SEED_FILE, "--handler", "jobworker.handlers:echo"),
    ),
    "fine worker, command": Role(
        "fine worker, command", "fine-queue-worker", ("jobworker", "fine", *SEED_FILE, *PROGRAM)
    ),
    "coarse worker": Role(
        "coarse worker", "coarse-queue-worker", ("jobworker", "coarse", *SEED_FILE, *PROGRAM)
    ),
    "indexed worker": Role(
        "indexed worker",
        "indexed-worker",
        ("jobworker", "indexed", "--index", "7", "--items-file", "/items/items.json", *PROGRAM),
    ),
    # The init container of the init-container variant writes to its emptyDir (here /tmp).
    "indexed input": Role(
        "indexed input",
        "indexed-worker",
        ("jobworker-write-item",),
        (("ITEMS_FILE", "/items/items.b64"), ("WRITE_ITEM_PATH", "/tmp/item"), ("JOB_COMPLETION_INDEX", "7")),
    ),
}


def measure_all() -> list[Usage]:
    usages = []
    with tempfile.TemporaryDirectory() as directory, RedisServer(Path(directory)) as redis_server:
        env = {"REDIS_URL": redis_server.url, "QUEUE_NAME": "q"}
        with items_file(FINE_ITEMS) as path:
            usages.append(run(ROLES["fine worker, handler"], env, path, FINE_ITEMS))
        env["QUEUE_NAME"] = "commands"
        with items_file(COMMAND_ITEMS) as path:
            usages.append(run(ROLES["fine worker, command"], env, path, COMMAND_ITEMS))
    with RabbitServer() as rabbit_server:
        env = {**rabbit_server.env(), "QUEUE_NAME": "q"}
        with items_file(COARSE_ITEMS) as path:
            usages.append(run(ROLES["coarse worker"], env, path, COARSE_ITEMS))
    with items_file(200) as path:
        usages.append(run(ROLES["indexed worker"], {}, path, 1))
    with items_file(200, by_index=True) as path:
        usages.append(run(ROLES["indexed input"], {}, path, 1))
    return usages


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON object: {role: usage}")
    args = parser.parse_args()
    usages = measure_all()
    if args.json:
        print(json.dumps({usage.role: {**asdict(usage), "cores": usage.cores} for usage in usages}))
        return 0
    print(f"{'role':22} {'peak MiB':>9} {'CPU s':>7} {'wall s':>7} {'cores':>6} {'items':>7}")
    for usage in usages:
        print(
            f"{usage.role:22} {usage.peak_bytes / 2**20:9.1f} {usage.cpu_seconds:7.2f} {usage.seconds:7.2f} "
            f"{usage.cores:6.2f} {usage.items:7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
