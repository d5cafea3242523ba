#!/usr/bin/env python3
"""Print each worker image's size on top of its base image, and its whole size.

The base is read from the image's `org.opencontainers.image.base.name` label (set from the
PYTHON_IMAGE build-arg), so the numbers are always against the base the image was built on.
"Added" is the image's size less the base's; the base's layers must be the first layers of the
image, otherwise the image was not built on that base and the script says so.

Usage: scripts/image-sizes.py [--json] IMAGE...      (make image-sizes passes the built images)
Sizes are in bytes in JSON and in MB (10^6 bytes, as `docker images` shows them) in the table.
"""

import argparse
import json
import shutil
import subprocess
import sys

BASE_LABEL = "org.opencontainers.image.base.name"


class SizeError(Exception):
    """An image or its base cannot be measured; the message says why."""


def inspect(reference: str) -> dict:
    result = subprocess.run(
        ["docker", "image", "inspect", reference], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SizeError(f"cannot inspect {reference}: {result.stderr.strip() or 'docker failed'}")
    return json.loads(result.stdout)[0]


def measure(reference: str, base: str | None = None) -> dict:
    """The image's whole size, its base's, and the bytes it adds on top of the base."""
    image = inspect(reference)
    base = base or (image["Config"].get("Labels") or {}).get(BASE_LABEL)
    if not base:
        raise SizeError(f"{reference} has no {BASE_LABEL} label: give the base with --base")
    base_image = inspect(base)
    layers, base_layers = image["RootFS"]["Layers"], base_image["RootFS"]["Layers"]
    if layers[: len(base_layers)] != base_layers:
        raise SizeError(f"{reference} is not built on {base} (its first layers differ): rebuild it")
    return {
        "image": reference,
        "base": base,
        "added_bytes": image["Size"] - base_image["Size"],
        "added_layers": len(layers) - len(base_layers),
        "total_bytes": image["Size"],
        "base_bytes": base_image["Size"],
    }


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def table(rows: list[dict]) -> str:
    header = ("image", "added on base", "whole image", "base")
    lines = [header] + [
        (row["image"], megabytes(row["added_bytes"]), megabytes(row["total_bytes"]), row["base"])
        for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image references, e.g. from `make image-refs`"
    )
    parser.add_argument("--base", help=f"measure against this base instead of the {BASE_LABEL} label")
    parser.add_argument("--json", action="store_true", help="one JSON array of objects, sizes in bytes")
    args = parser.parse_args()
    if shutil.which("docker") is None:
        print("image-sizes: docker is not installed", file=sys.stderr)
        return 1
    try:
        rows = [measure(reference, args.base) for reference in args.images]
    except SizeError as error:
        print(f"image-sizes: {error}", file=sys.stderr)
        return 1
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
