"""Building the worker images with `make images` and running them the way a pod would.

`docker_run_argv` turns a container as a pod spec describes it into `docker run`: `command`
replaces the image's ENTRYPOINT (as in Kubernetes), `args` follow it, `mounts` stand in for
volumes. Every run has a
read-only root filesystem with a tmpfs at /tmp (the charts' emptyDir), no capabilities and no
privilege escalation, as the charts' restricted pods; the host network lets a container reach the
servers the tests start on 127.0.0.1.
"""

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devkit.docker import DOCKER, docker_run_argv

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PYTHON_IMAGE = "python:3.12-slim"  # the Makefile's default; PYTHON_IMAGE overrides both
BUILD_TIMEOUT = 1200.0
RUN_TIMEOUT = 120.0


def python_image() -> str:
    """The base the images are built on: $PYTHON_IMAGE, else the official image."""
    return os.environ.get("PYTHON_IMAGE") or DEFAULT_PYTHON_IMAGE


def make(*targets: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """`make -s TARGET...` in the repository, with this process's environment (PYTHON_IMAGE...)."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *targets],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHON_IMAGE": python_image()},
    )


@dataclass(frozen=True)
class BuiltImages:
    """The images `make images` built, by name (fine-queue-worker, ...), and their base."""

    refs: Mapping[str, str]
    base: str

    def __getitem__(self, name: str) -> str:
        return self.refs[name]


def image_refs() -> dict[str, str]:
    """What `make images` tags, by image name: `make image-refs`, the Makefile's own list.

    Charts must default to exactly these (repository ghcr.io/jobworker/NAME, tag = appVersion).
    """
    listed = make("image-refs")
    if listed.returncode != 0:
        raise RuntimeError(f"make image-refs failed: {listed.stderr.strip()}")
    return {ref.rsplit("/", 1)[-1].split(":", 1)[0]: ref for ref in listed.stdout.split()}


def build_images() -> BuiltImages:
    """Run `make images` and return what it built."""
    refs = image_refs()
    built = make("images", timeout=BUILD_TIMEOUT)
    if built.returncode != 0:
        tail = "\n".join((built.stdout + built.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"make images failed with PYTHON_IMAGE={python_image()}:\n{tail}")
    return BuiltImages(refs=refs, base=python_image())


def inspect_image(reference: str) -> dict:
    result = subprocess.run(
        [DOCKER, "image", "inspect", reference], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)[0]


def run_container(
    image: str,
    *,
    args: Sequence[str] = (),
    command: Sequence[str] | None = None,
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess:
    """Run the image once to completion, as a restricted pod would; exit status, stdout and stderr."""
    argv = docker_run_argv(image, args=args, command=command)
    return subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=RUN_TIMEOUT, check=False
    )
