"""scripts/shared-lines.py and scripts/compare-renders.py: what they count and what they compare.

Both run on the real charts from the command line (README, DEVELOPERS.md); here they run on small
charts made for the test, so that each rule can be seen to hold and to fail.
"""

import base64
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.support.helm import REPO

SHARED_LINES = REPO / "scripts" / "shared-lines.py"


def load(script: str) -> ModuleType:
    """A script of scripts/ as a module (their names have dashes, as the other scripts')."""
    spec = importlib.util.spec_from_file_location(script.replace("-", "_"), REPO / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chart(root: Path, name: str, files: dict[str, str], chart_type: str = "application") -> None:
    (root / name / "templates").mkdir(parents=True)
    metadata = f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n"
    (root / name / "Chart.yaml").write_text(f"{metadata}type: {chart_type}\n")
    for path, text in files.items():
        (root / name / path).write_text(text)


def shared_lines(charts: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SHARED_LINES), "--charts", str(charts), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_shared_lines_counts_distinct_non_trivial_lines_with_chart_names_normalised(tmp_path: Path):
    template = (
        '{{- define "%s.fullname" -}}\n'
        '{{ include "lib.names.fullname" . }}\n'
        "{{- end }}\n"
        "---\n"
        "  }\n"
        "\n"
        "kind: ConfigMap\n"
        "kind: ConfigMap\n"
        "data: %s\n"
    )
    chart(tmp_path, "fine-queue-job", {"templates/a.yaml": template % ("fine-queue-job", "fineQueueJob")})
    chart(tmp_path, "indexed-job", {"templates/b.yaml": template % ("indexed-job", "IndexedJob")})
    chart(tmp_path, "lib", {"templates/_c.tpl": template % ("lib", "lib")}, chart_type="library")

    result = shared_lines(tmp_path, "--json")

    assert result.returncode == 0, result.stderr
    counted = json.loads(result.stdout)
    assert counted["charts"] == ["fine-queue-job", "indexed-job"], "library charts are not counted"
    # define (name normalised), include, kind and data (its camelCase and PascalCase spellings too);
    # the end action, ---, the lone brace and the empty line are trivial; kind counts once.
    assert counted["pairs"] == [{"charts": ["fine-queue-job", "indexed-job"], "shared": 4}]
    assert counted["total"] == 4
    shown = shared_lines(tmp_path, "--show", "fine-queue-job", "indexed-job").stdout.splitlines()
    assert "data: <chart>" in shown
    assert '{{- define "<chart>.fullname" -}}' in shown


def test_shared_lines_leaves_out_schema_entries_generated_from_the_source(tmp_path: Path):
    shared = {
        "properties": {"nameOverride": {"type": "string"}},
        "definitions": {"quantity": {"type": "number"}},
    }
    schema = {
        "type": "object",
        "properties": {"nameOverride": {"type": "string"}, "size": {"$ref": "#/definitions/quantity"}},
        "definitions": {"quantity": {"type": "number"}},
    }
    for name in ("redis", "rabbitmq"):
        chart(tmp_path, name, {"values.schema.json": json.dumps(schema)})
    before = json.loads(shared_lines(tmp_path, "--json").stdout)["total"]
    (tmp_path / "jobworker-common" / "schema").mkdir(parents=True)
    (tmp_path / "jobworker-common" / "schema" / "shared.json").write_text(json.dumps(shared))
    after = json.loads(shared_lines(tmp_path, "--json").stdout)["total"]

    # "type": "object", "properties": {, "size": {, "$ref" stay; nameOverride and quantity go.
    assert (before, after) == (9, 4)
    schema["properties"]["nameOverride"]["maxLength"] = 63  # edited by hand: counted again
    for name in ("redis", "rabbitmq"):
        (tmp_path / name / "values.schema.json").write_text(json.dumps(schema))
    assert json.loads(shared_lines(tmp_path, "--json").stdout)["total"] == 7


def secret(name: str, **data: str) -> dict:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


def test_compare_renders_sees_through_generated_secrets_only():
    compare = load("compare-renders")
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    first = [config, secret("s", password="a" * 32, username="jobworker")]
    second = [dict(config), secret("s", password="b" * 32, username="jobworker")]
    assert compare.differences(("objects", first), ("objects", second)) == ""

    renamed = [dict(config), secret("s", password="c" * 32, username="someone")]
    diff = compare.differences(("objects", first), ("objects", renamed))
    assert "-  username: am9id29ya2Vy" in diff
    assert "   password: <random>" in diff.splitlines(), "context of the diff, not a change"

    changed = [{**config, "data": {"a": "2"}}, secret("s", password="d" * 32, username="jobworker")]
    assert "+  a: '2'" in compare.differences(("objects", first), ("objects", changed))


def test_compare_renders_compares_notes_as_text_and_refusals_whole():
    compare = load("compare-renders")
    notes = [{"notes": "Redis is starting.\nClients connect to:"}]
    changed = [{"notes": "Redis is starting.\nClients go to:"}]
    diff = compare.differences(("objects", notes), ("objects", changed))
    assert "-Clients connect to:" in diff
    assert "+Clients go to:" in diff
    refusal = "Error: execution error at (redis/templates/statefulset.yaml:1:4): bad"
    assert compare.differences(("refused", refusal), ("refused", refusal)) == ""
    assert compare.differences(("refused", refusal), ("refused", refusal.replace("1:4", "2:4")))
    assert compare.differences(("refused", refusal), ("objects", notes))
