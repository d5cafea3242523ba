#!/usr/bin/env python3
"""Count the lines the charts copy from each other: per pair of charts, and in total.

A chart's lines are those of every file under its templates/ (NOTES.txt and the helm test pods
included) and of its values.schema.json, each stripped of the white space around it, with the
chart's own name (fine-queue-job, fineQueueJob, FineQueueJob, fine_queue_job) replaced by
<chart>, so that `{{ include "fine-queue-job.labels" . }}` and `{{ include "indexed-job.labels" . }}`
count as one line. Lines with no letter or digit once bare `{{ end }}` and `{{ else }}` actions are
dropped (braces, `---`, `{{- end }}`, `*/}}`) are trivial and not counted. A pair of charts shares
the distinct lines both have; the total is the sum over the pairs.

The schema is read as JSON and counted as `make schemas` writes it (two spaces of indentation,
one array element per line), so its layout does not change the count. The schema entries that
`make schemas` writes from charts/jobworker-common/schema/shared.json, as long as they are equal
to it, are left out: one source holds them and a test keeps every chart's copy equal to it, so
a fix is made once. Library charts (type: library) are not counted either: the lines they hold
are the ones the others no longer copy.

Usage: scripts/shared-lines.py [--json] [--show CHART CHART] [--charts DIR]
"""

import argparse
import itertools
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_SCHEMA = Path("jobworker-common") / "schema" / "shared.json"
GENERATED_SECTIONS = ("definitions", "properties")
# Bare {{ end }} and {{ else }} actions: what is left of a line once they are gone must have a
# letter or a digit for the line to count.
BARE_ACTIONS = re.compile(r"\{\{-?\s*(end|else)\s*-?\}\}")
WORD = re.compile(r"[A-Za-z0-9]")
LIBRARY = re.compile(r"^type:\s*[\"']?library\b", re.MULTILINE)


def spellings(name: str) -> list[str]:
    """The ways a chart's name is written in its files, longest first."""
    words = name.split("-")
    forms = {
        name,
        "_".join(words),
        words[0] + "".join(word.title() for word in words[1:]),
        "".join(word.title() for word in words),
    }
    return sorted(forms, key=len, reverse=True)


def application_charts(charts_dir: Path) -> list[str]:
    """Every chart under `charts_dir` but the library charts, by name."""
    return [
        chart_yaml.parent.name
        for chart_yaml in sorted(charts_dir.glob("*/Chart.yaml"))
        if not LIBRARY.search(chart_yaml.read_text())
    ]


def schema_text(schema_file: Path, shared: dict) -> str:
    """The chart's schema as `make schemas` writes it, without the entries generated from `shared`."""
    document = json.loads(schema_file.read_text())
    for section in GENERATED_SECTIONS:
        entries = document.get(section) or {}
        for key in [key for key, value in entries.items() if shared.get(section, {}).get(key) == value]:
            del entries[key]
        if section in document and not entries:
            del document[section]
    return json.dumps(document, indent=2, ensure_ascii=False)


def chart_lines(chart_dir: Path, shared: dict) -> set[str]:
    """The distinct non-trivial lines of a chart's templates and schema, its name replaced."""
    texts = [path.read_text() for path in sorted((chart_dir / "templates").rglob("*")) if path.is_file()]
    schema_file = chart_dir / "values.schema.json"
    if schema_file.exists():
        texts.append(schema_text(schema_file, shared))
    names = spellings(chart_dir.name)
    lines = set()
    for text in texts:
        for raw in text.splitlines():
            line = raw.strip()
            if not WORD.search(BARE_ACTIONS.sub("", line)):
                continue
            for name in names:
                line = line.replace(name, "<chart>")
            lines.add(line)
    return lines


def chart_lines_of(charts_dir: Path) -> dict[str, set[str]]:
    """The lines of every application chart under `charts_dir`, by chart."""
    shared_file = charts_dir / SHARED_SCHEMA
    shared = json.loads(shared_file.read_text()) if shared_file.exists() else {}
    return {name: chart_lines(charts_dir / name, shared) for name in application_charts(charts_dir)}


def count(lines: dict[str, set[str]]) -> dict:
    """Lines shared per pair of charts, and their sum."""
    pairs = [
        {"charts": [first, second], "shared": len(lines[first] & lines[second])}
        for first, second in itertools.combinations(lines, 2)
    ]
    return {"charts": list(lines), "pairs": pairs, "total": sum(pair["shared"] for pair in pairs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--show", nargs=2, metavar="CHART", help="print the lines two charts share")
    parser.add_argument("--charts", type=Path, default=REPO / "charts", help="the charts directory")
    args = parser.parse_args()

    lines = chart_lines_of(args.charts)
    if args.show:
        missing = [name for name in args.show if name not in lines]
        if missing:
            print(f"shared-lines: no application chart {' '.join(missing)} in {args.charts}", file=sys.stderr)
            return 2
        print("\n".join(sorted(lines[args.show[0]] & lines[args.show[1]])))
        return 0
    result = count(lines)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    width = max((len(" + ".join(pair["charts"])) for pair in result["pairs"]), default=5)
    for pair in result["pairs"]:
        print(f"{' + '.join(pair['charts']):<{width}}  {pair['shared']:>5}")
    print(f"{'total':<{width}}  {result['total']:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
