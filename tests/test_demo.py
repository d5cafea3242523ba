"""`make demo` on a machine with no kube context: it says it takes the local cluster, runs the docs'
three examples there, and prints what the cluster reports, which must be the docs' outcomes."""

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
POD_LINE = re.compile(r"^  pod (\S+) +(?:index (\d+) )?exit (\S+): (.*)$", re.MULTILINE)


def sections(output: str) -> dict[str, str]:
    """The output of each example, by chart."""
    found = re.split(r"^== .* \((\S+)\)$", output, flags=re.MULTILINE)
    return dict(zip(found[1::2], found[2::2], strict=True))


def pods(section: str) -> list[tuple[str | None, str, list[str]]]:
    return [
        (index, code, items.split() if items != "-" else [])
        for _, index, code, items in POD_LINE.findall(section)
    ]


@pytest.mark.e2e
def test_make_demo_without_a_kube_context_runs_the_docs_examples_on_the_local_cluster(tmp_path: Path):
    if not (REPO / ".cluster" / "kubeconfig").exists():
        reason = "no local cluster here (make cluster)"
        if os.environ.get("REQUIRE_CLUSTER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    env = {key: value for key, value in os.environ.items() if key != "IMAGE_MAP"}
    env["KUBECONFIG"] = str(tmp_path / "absent")  # no kubeconfig: no current kube context
    result = subprocess.run(
        ["make", "--no-print-directory", "demo"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=1500, check=False,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, output + result.stderr[-3000:]
    assert "Cluster: the local cluster of `make cluster` (no kubectl" in output or (
        "Cluster: the local cluster of `make cluster` (the current kube context does not answer" in output
    ), output
    fine, coarse, indexed = (
        sections(output)[chart] for chart in ("fine-queue-job", "coarse-queue-job", "indexed-job")
    )

    # fine: 2 workers, every fruit processed once, each in the order the items were pushed
    fine_pods = pods(fine)
    assert [code for _, code, _ in fine_pods] == ["0", "0"]
    assert sorted(item for _, _, items in fine_pods for item in items) == sorted(FRUITS)
    for _, _, items in fine_pods:
        assert items == sorted(items, key=FRUITS.index)

    # coarse: 8 pods, one message each
    coarse_pods = pods(coarse)
    assert len(coarse_pods) == 8, coarse
    assert sorted(items[0] for _, _, items in coarse_pods if len(items) == 1) == sorted(FRUITS[:8])

    # indexed: foo bar baz qux xyz through the docs' unmodified rev, at indexes 0..4
    assert {int(index): items for index, _, items in pods(indexed)} == {
        0: ["oof"],
        1: ["rab"],
        2: ["zab"],
        3: ["xuq"],
        4: ["zyx"],
    }
    assert '"completedIndexes": "0-4"' in indexed
    summary = output.rsplit("\n\n", 1)[-1]
    assert [line.split()[-1] for line in summary.splitlines()[2:]] == ["Complete"] * 3
