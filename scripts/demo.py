#!/usr/bin/env python3
"""`make demo`: the three examples of the Kubernetes docs, end to end, on a cluster or locally.

Usage: scripts/demo.py [--local | --cluster] [--processes]
The examples and the local stand-in for the Job controller are in tests/support/demo.py.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from tests.support.demo import run_demo


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--local",
        dest="mode",
        action="store_const",
        const="local",
        default="auto",
        help="run locally even when a cluster answers",
    )
    where.add_argument(
        "--cluster", dest="mode", action="store_const", const="cluster", help="fail unless a cluster answers"
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="locally, run pods as processes rather than Docker containers",
    )
    args = parser.parse_args()
    try:
        results = run_demo(args.mode, docker=False if args.processes else None)
    except RuntimeError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    return 0 if all(result.succeeded for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
