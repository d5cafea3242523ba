"""The Docker engine: whether one answers, and what `docker run` mounts."""

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DOCKER = "docker"


def docker_problem() -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    if shutil.which(DOCKER) is None:
        return "docker is not installed"
    try:
        result = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "no Docker engine answered `docker info` within 30 s"
    if result.returncode != 0 or not result.stdout.strip():
        first = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers `docker info`: {first}"
    return None


@dataclass(frozen=True)
class Mount:
    """A host path mounted into the container (a ConfigMap, a downward API file, an emptyDir)."""

    source: Path
    target: str
    read_only: bool = True

    def option(self) -> str:
        return f"type=bind,source={self.source},target={self.target}" + (
            ",readonly" if self.read_only else ""
        )


def docker_run_argv(
    image: str,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    mounts: Sequence[Mount] = (),
    user: str | None = None,
    read_only: bool = True,
    network: str = "host",
    tmpfs: bool = True,
    name: str | None = None,
) -> list[str]:
    """The `docker run` command line for a container described as a pod spec describes it.

    `tmpfs` puts a tmpfs at /tmp (the charts' emptyDir there) when no mount stands in for it.
    """
    argv = [DOCKER, "run", "--rm", "-i", "--network", network, "--cap-drop", "ALL"]
    argv += ["--security-opt", "no-new-privileges"]
    if name is not None:
        argv += ["--name", name]
    if read_only:
        argv.append("--read-only")
    if tmpfs:
        argv += ["--tmpfs", "/tmp"]  # noqa: S108 - the container's own tmpfs
    if user is not None:
        argv += ["--user", user]
    for variable, value in (env or {}).items():
        argv += ["--env", f"{variable}={value}"]
    for mount in mounts:
        argv += ["--mount", mount.option()]
    rest = list(args)
    if command is not None:  # Kubernetes' `command` replaces the ENTRYPOINT; `args` follow it
        if not command:
            raise ValueError("an empty command would keep the image's ENTRYPOINT; give None instead")
        argv += ["--entrypoint", command[0]]
        rest = [*command[1:], *rest]
    return [*argv, image, *rest]
