"""`python -m localcluster up|down|status|traces|import|point-charts`: what the Makefile's `cluster`,
`cluster-down` and `ct-install` targets run, and what the tests ask. Errors the user can act on are one
line and exit status 1."""

import argparse
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from localcluster import cluster
from localcluster.host import ClusterError
from localcluster.images import import_images
from localcluster.layout import Layout
from localcluster.standins import ImageMap, point_charts

log = logging.getLogger("localcluster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcluster", description=__doc__)
    parser.add_argument("--bin", type=Path, help="the directory cluster/build-binaries filled")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("up", help="start the cluster, or reuse the healthy one that runs")
    start.add_argument("--kubeconfig", type=Path, required=True, help="where to copy the admin kubeconfig")
    start.add_argument("--image-map", type=Path, required=True, help="the stand-ins (build-standins --map)")
    start.add_argument("--image", action="append", default=[], help="another image to import (repeatable)")
    down = sub.add_parser("down", help="stop the cluster and remove every trace of it")
    down.add_argument("--kubeconfig", type=Path, help="the kubeconfig copy to remove with its directory")
    sub.add_parser("status", help="say whether a healthy cluster runs (exit 0) or not (exit 1)")
    sub.add_parser("traces", help="list what of the cluster is on this machine (exit 1 if anything)")
    load = sub.add_parser(
        "import", help="import images from the local Docker engine into the running cluster"
    )
    load.add_argument("images", nargs="+", metavar="IMAGE")
    point = sub.add_parser("point-charts", help="copy charts with their values pointed at the stand-ins")
    point.add_argument("--image-map", type=Path, required=True)
    point.add_argument("charts", type=Path)
    point.add_argument("destination", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="localcluster: %(message)s")
    if args.action in ("up", "status", "import") and args.bin is None:
        parser.error(f"{args.action} needs --bin")
    layout = Layout(bin=args.bin.resolve()) if args.bin else Layout()
    try:
        if args.action == "up":
            version = _output([str(layout.program("kubeadm")), "version", "-o", "short"]).strip()
            images = ImageMap.read(args.image_map)
            log.info("%s", cluster.up(layout, version, images, args.image, args.kubeconfig.resolve()))
        elif args.action == "down":
            cluster.down(layout)
            if args.kubeconfig:
                shutil.rmtree(args.kubeconfig.parent, ignore_errors=True)
            log.info("the cluster is gone")
        elif args.action == "import":
            import_images(layout, args.images)
        elif args.action == "traces":
            found = cluster.traces(layout)
            print("\n".join(found) if found else "no trace of the cluster")
            return 1 if found else 0
        elif args.action == "point-charts":
            point_charts(args.charts, args.destination, ImageMap.read(args.image_map))
        else:
            running = cluster.healthy(layout)
            log.info("a healthy cluster runs" if running else "no healthy cluster runs")
            return 0 if running else 1
    except ClusterError as error:
        print(f"make cluster: {error}", file=sys.stderr)
        return 1
    return 0


def _output(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    sys.exit(main())
