"""Bad values are refused before anything renders, with a message naming the field.

Each file under bad-values/<chart>/ is one mistake a user could make. Its `# expect:` lines are
texts the error must contain (the field's name, or the sentence of <chart>.validateValues), with
Helm 3's schema messages and Helm 4's alike.
"""

from pathlib import Path

import pytest

from tests.support.helm import Helm, chart_path

BAD_VALUES = Path(__file__).parent / "bad-values"
CASES = sorted(BAD_VALUES.glob("*/*.yaml"))


def expectations(case: Path) -> list[str]:
    prefix = "# expect:"
    return [line[len(prefix) :].strip() for line in case.read_text().splitlines() if line.startswith(prefix)]


def test_there_are_enough_bad_values_cases():
    assert len(CASES) >= 20
    for case in CASES:
        assert expectations(case), f"{case} says nothing about the error it must cause"


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.parent.name}/{case.stem}")
def test_bad_values_are_refused_with_a_message_naming_the_field(helm: Helm, case: Path):
    error = helm.template_error(chart_path(case.parent.name), values_files=[case])
    for expected in expectations(case):
        assert expected in error, f"{helm} did not name {expected!r}:\n{error}"
    assert "nil pointer" not in error
    assert "panic" not in error


def test_all_value_checks_are_reported_at_once(helm: Helm):
    """validateValues gathers every check: one run names every mistake, not just the first."""
    values = {"handler": "pkg:fn", "command": ["cat"], "items": ["a"], "itemsFile": "b", "graceSeconds": 40}
    error = helm.template_error(chart_path("fine-queue-job"), values)
    assert "handler and command are both set" in error
    assert "items and itemsFile are both set" in error
    assert "graceSeconds (40) must be below terminationGracePeriodSeconds (30)" in error
