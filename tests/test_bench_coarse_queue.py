"""bench/coarse_queue.py (`make bench`): a small run against its own rabbitmq-server.

It checks what the numbers rest on, not the numbers: each of the four commands ran once per
message (the bench itself fails if a worker leaves a message behind), the floors ran on the
worker's own interpreter, the table shows the same figures as --json, and --compare runs the
worker as of a revision (the bench itself fails if that worker imports the work tree's package).
"""

import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "coarse_queue.py"


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), "--messages", "2", "--seed-items", "10", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_small_run_times_both_workers_and_the_python_floors():
    result = bench("--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["messages"] == 2
    assert report["python"] == platform.python_version()
    assert report["pika"] == importlib.metadata.version("pika")
    per_message = report["per_message_ms"]
    assert set(per_message) == {"jobworker_coarse", "amqp_consume", "python_alone", "python_import_pika"}
    assert all(ms > 0 for ms in per_message.values()), per_message
    ratio = per_message["jobworker_coarse"] / per_message["amqp_consume"]
    assert report["per_message_ratio"] == round(ratio, 2)


def test_the_table_names_each_command_with_the_interpreter_and_pika_versions():
    result = bench()
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    floors = next(line for line in lines if line.startswith("floors, "))
    assert f"Python {platform.python_version()}" in floors
    assert f"pika {importlib.metadata.version('pika')}" in floors
    workers = ("jobworker coarse -- cat", "amqp-consume -c 1 cat")
    for command in (*workers, "python -c pass", "python -c 'import pika'"):
        assert any(line.strip().startswith(command) and line.endswith(" ms") for line in lines), command


def test_compare_runs_the_worker_as_of_a_revision_next_to_the_work_trees():
    result = bench("--json", "--compare", "HEAD")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["compared_with"] == "HEAD"
    assert report["per_message_ms"]["jobworker_coarse_compared"] > 0
    assert isinstance(report["time_change_percent"], float)
    table = bench("--compare", "HEAD")
    assert table.returncode == 0, table.stderr[-3000:]
    assert "  jobworker coarse as of HEAD: " in table.stdout
    assert "  the work tree against it: " in table.stdout
