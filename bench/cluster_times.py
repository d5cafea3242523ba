#!/usr/bin/env python3
"""How long the local cluster takes: to build, to start, to reuse, to ct install each chart, and CI.

Measured, in one run, on this machine (root, a Docker engine; `make cluster` must work here):

- build, cold and warm: cluster/build-binaries into a new directory, first with an empty Go build
  cache (the module cache is kept: downloading is the network's time, not the build's), then again
  with that cache warm, as a second clone on the same machine would;
- `make cluster` from cold (after `make cluster-down`; the binaries and images are cached) and when
  it reuses the running cluster;
- `ct install` of each chart with every ci/*-values.yaml (as `make ct-install` runs it);
- the whole `bash .ci/run` in a fresh clone next to this checkout (20 minutes or more), when
  `--phases` names `ci`.

It takes the running cluster down and starts it again. Prints a table, or one JSON object (--json).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> float:
    """Seconds `command` took; it must succeed."""
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise SystemExit(f"cluster_times: {' '.join(command)} failed:\n{output}")
    return time.monotonic() - started


def make_variable(name: str) -> str:
    result = subprocess.run(
        ["make", "-s", f"--eval=print-var: ; @echo $({name})", "print-var"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def build_times() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cluster-build-") as scratch:
        env = {**os.environ, "GOCACHE": f"{scratch}/go-build"}
        cold = timed([str(REPO / "cluster" / "build-binaries"), f"{scratch}/cold"], env=env)
        warm = timed([str(REPO / "cluster" / "build-binaries"), f"{scratch}/warm"], env=env)
    return {"build_cold_seconds": cold, "build_warm_seconds": warm}


def cluster_times() -> dict[str, float]:
    timed(["make", "--no-print-directory", "cluster-down"])
    cold = timed(["make", "--no-print-directory", "cluster"])
    reused = timed(["make", "--no-print-directory", "cluster"])
    return {"cluster_cold_seconds": cold, "cluster_reused_seconds": reused}


def ct_install_times() -> dict[str, float]:
    """`ct install` of each chart on its own, with the values `make ct-install` gives it."""
    charts = REPO / ".cluster" / "bench-ct-charts"
    shutil.rmtree(charts, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(REPO / "cluster")}
    timed([str(REPO / ".venv" / "bin" / "python"), "-m", "localcluster", "point-charts",
           "--image-map", ".cluster/image-map", "charts", str(charts)], env=env)  # fmt: skip
    cluster_bin = make_variable("CLUSTER_BIN")
    helm = Path(make_variable("HELM")).resolve()
    path = f"{REPO / '.venv' / 'bin'}:{helm.parent}:{cluster_bin}:{os.environ['PATH']}"
    ct_env = {**os.environ, "PATH": path, "CT_CONFIG_DIR": f"{cluster_bin}/ct-etc",
              "KUBECONFIG": str(REPO / ".cluster" / "kubeconfig")}  # fmt: skip
    times = {}
    try:
        installable = [
            path.parent.name
            for path in charts.glob("*/Chart.yaml")
            if "type: library" not in path.read_text()  # a library chart has nothing to install
        ]
        for chart in sorted(installable):
            command = [f"{cluster_bin}/ct", "install", "--config", "ct.yaml", "--charts", str(charts / chart)]
            try:
                times[f"ct_install_{chart}_seconds"] = timed(command, env=ct_env)
            except SystemExit as failure:  # one chart's failure must not lose the others' times
                print(failure, file=sys.stderr)
                times[f"ct_install_{chart}_failed"] = 1.0
    finally:
        shutil.rmtree(charts, ignore_errors=True)
    return times


def ci_time() -> dict[str, float]:
    clone = REPO.parent / "ci-times-clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    try:
        return {"ci_run_seconds": timed(["bash", ".ci/run"], cwd=clone, env={**os.environ, "CI": "true"})}
    finally:
        shutil.rmtree(clone, ignore_errors=True)


# Each phase and what it times, in the order a run takes them.
PHASES: dict[str, Callable[[], dict[str, float]]] = {
    "build": build_times,
    "cluster": cluster_times,
    "ct": ct_install_times,
    "ci": ci_time,
}


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    go = subprocess.run(["go", "version"], capture_output=True, text=True, check=False).stdout.strip()
    return {"cpu": cpu, "cores": str(os.cpu_count()), "kernel": platform.release(), "go": go}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument(
        "--phases",
        default="build,cluster,ct",
        help=f"comma-separated, of {','.join(PHASES)} (default build,cluster,ct; ci takes 20 minutes)",
    )
    args = parser.parse_args()
    phases = args.phases.split(",")
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phases {', '.join(unknown)}: choose from {', '.join(PHASES)}")
    if os.geteuid() != 0:
        print("cluster_times: needs root (it runs make cluster and make cluster-down)", file=sys.stderr)
        return 1
    results: dict[str, object] = {"machine": machine()}
    for phase in phases:
        results.update(PHASES[phase]())
        print(f"cluster_times: after {phase}: {json.dumps(results)}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results))
        return 0
    for key, value in results.items():
        if key != "machine":
            print(f"{key.removesuffix('_seconds').replace('_', ' '):32} {value:8.1f} s")
    print("machine: " + ", ".join(f"{key} {value}" for key, value in results["machine"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
