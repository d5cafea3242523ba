#!/usr/bin/env python3
"""Write the schema entries the charts share into each chart's values.schema.json, from one source.

charts/jobworker-common/schema/shared.json holds them, in two sections:

- "properties": the schemas of the values that mean the same in every chart that has them
  (nameOverride, the pod security context, a Job's time limits, ...). A chart's schema gets the
  entry of each such value its top-level "properties" name, in its place there.
- "definitions": the types these entries and the charts' own refer to ("$ref":
  "#/definitions/NAME"). A chart's schema gets exactly the definitions it refers to, directly or
  through another one, after those of its own.

Everything else in a schema is the chart's own. `make schemas` runs this script; with --check it
writes nothing and fails, naming each schema and entry that differs from what it would write (a
schema edited by hand where the source rules), as the chart tests do.

Usage: scripts/chart-schemas.py [--check] [--charts DIR]
"""

import argparse
import copy
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = Path("jobworker-common") / "schema" / "shared.json"
REF = re.compile(r"^#/definitions/(.+)$")


class SchemaError(Exception):
    """A schema refers to a definition that neither it nor the source has."""


def references(node: object) -> set[str]:
    """The names of the definitions a part of a schema refers to."""
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            match = REF.match(value) if key == "$ref" and isinstance(value, str) else None
            found |= {match.group(1)} if match else references(value)
        return found
    if isinstance(node, list):
        return set().union(*map(references, node)) if node else set()
    return set()


def generate(schema: dict, shared: dict, where: str) -> dict:
    """The schema with its shared properties and the definitions it needs taken from `shared`."""
    result = copy.deepcopy(schema)
    properties = result.get("properties") or {}
    for key in properties:
        if key in shared["properties"]:
            properties[key] = copy.deepcopy(shared["properties"][key])
    own = {k: v for k, v in (result.pop("definitions", None) or {}).items() if k not in shared["definitions"]}
    needed, pending = set(), references(result) | references(own)
    while pending:
        name = pending.pop()
        if name in needed or name in own:
            continue
        if name not in shared["definitions"]:
            raise SchemaError(f"{where}: #/definitions/{name} is neither the chart's own nor in {SOURCE}")
        needed.add(name)
        pending |= references(shared["definitions"][name])
    definitions = own | {k: copy.deepcopy(v) for k, v in shared["definitions"].items() if k in needed}
    if definitions:
        result["definitions"] = definitions
    return result


def text(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def drift(current: dict, wanted: dict) -> list[str]:
    """The entries of a schema that differ from what is generated for it."""
    found = []
    for section in ("properties", "definitions"):
        mine, theirs = current.get(section) or {}, wanted.get(section) or {}
        keys = sorted(mine.keys() | theirs.keys())
        found += [f"{section}.{key}" for key in keys if mine.get(key) != theirs.get(key)]
    return found or ["its layout (not two-space indented JSON)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail when a schema differs")
    parser.add_argument("--charts", type=Path, default=REPO / "charts", help="the charts directory")
    args = parser.parse_args()

    source = args.charts / SOURCE
    shared = json.loads(source.read_text())
    stale = []
    for schema_file in sorted(args.charts.glob("*/values.schema.json")):
        current_text = schema_file.read_text()
        current = json.loads(current_text)
        try:
            wanted = generate(current, shared, str(schema_file))
        except SchemaError as error:
            print(f"chart-schemas: {error}", file=sys.stderr)
            return 1
        if text(wanted) == current_text:
            continue
        if args.check:
            stale.append(f"{schema_file}: {', '.join(drift(current, wanted))}")
        else:
            schema_file.write_text(text(wanted))
            print(f"chart-schemas: wrote {schema_file}")
    if stale:
        print(
            f"chart-schemas: not as {source} makes them (run `make schemas`):\n  " + "\n  ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
