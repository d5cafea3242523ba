"""bench/cluster_jobs.py's own logic, without a cluster: the median over repeated runs, the order
of the pairs, and the refusal of bad sizes before anything is built or installed (its cluster run:
tests/cluster)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from cluster_jobs import Measure, Run, as_json, median_of, print_table, ratios, turns  # noqa: E402


def measure(seconds: float, pods: int, peak: int | None) -> Measure:
    return Measure(seconds, pods, seconds / 2, 1.0, 0.0, peak, pods, seconds - 1, seconds / 100)


def test_each_figure_is_its_median_over_the_repeats():
    median = median_of([measure(90.0, 100, 5), measure(99.0, 101, 7), measure(80.0, 103, 6)])
    assert median.seconds == 90.0
    assert median.pods == 101
    assert median.pod_seconds == 45.0
    assert median.broker_peak_bytes == 6
    assert median.start_seconds == 0.9


def test_a_pattern_without_a_broker_keeps_no_peak():
    assert median_of([measure(1.0, 1, None), measure(2.0, 1, None)]).broker_peak_bytes is None


def test_a_ratio_over_a_docs_figure_of_zero_is_null_and_shown_as_a_dash(capsys: pytest.CaptureFixture[str]):
    # amqp-consume's pods often run 0 whole seconds: their pod-seconds sum can be 0.
    docs = measure(84.0, 100, 5)
    docs.pod_seconds = 0.0
    run = Run("coarse", 100, 4, measure(88.0, 100, 5), docs)
    run.ratios = ratios(run)
    entry = as_json(run)
    assert entry["ratios"]["pod_seconds"] is None
    assert json.loads(json.dumps(entry, allow_nan=False))["ratios"]["seconds"] == 1.048
    print_table([entry], [])
    header, _rule, row = capsys.readouterr().out.splitlines()
    cells = dict(zip(header.strip("|").split("|"), row.strip("|").split("|"), strict=True))
    assert cells[" ratio "] == " 1.05 ", (header, row)
    assert cells[" ratio pod-s "] == " - ", (header, row)


def test_the_table_is_markdown_with_one_row_per_run_and_the_growth_below(capsys: pytest.CaptureFixture[str]):
    entries = []
    for run in (
        Run("fine", 1000, 2, measure(2.0, 2, 5), measure(4.0, 2, 6)),
        Run("fine", 20000, 2, measure(3.0, 2, None), measure(8.0, 2, None)),
    ):
        run.ratios = ratios(run)
        entries.append(as_json(run))
    print_table(entries, ["fine grows"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| --- | ---: |")
    assert lines[1].count("|") == lines[0].count("|")
    assert lines[2].startswith("| fine | 1,000 | 2 | 2.0 / 4.0 | 0.50 | 2 / 2 |"), lines[2]
    assert lines[3].endswith("| - / - |"), lines[3]  # no broker: no peak
    assert lines[4:] == ["", "fine grows"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--items", "many"], "argument --items: 'many': give item counts such as 100 or 20,100"),
        (["--patterns", "coarse", "--items", "7"], "no size of these patterns has those --items"),
        (["--repeat", "0"], "--repeat 0: give 1 or more"),
    ],
)
def test_bad_sizes_are_one_line_before_anything_runs(tmp_path: Path, args: list[str], message: str):
    script = REPO / "bench" / "cluster_jobs.py"
    result = subprocess.run(
        [sys.executable, str(script), "--kubeconfig", str(tmp_path / "none"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"cluster_jobs.py: error: {message}"
    assert result.stdout == ""


@pytest.mark.parametrize("variants", [1, 2])
def test_ours_and_the_docs_take_turns_at_going_first(variants: int):
    order = turns(variants, 4)
    assert len(order) == 4 * variants
    for index in range(variants):
        docs_first = [first for variant, first in order if variant == index]
        assert docs_first == [index % 2 == 1, index % 2 == 0, index % 2 == 1, index % 2 == 0]
    # Within a round, one variant's docs go first where the next one's ours do.
    assert [first for _, first in order[:variants]] == [index % 2 == 1 for index in range(variants)]
