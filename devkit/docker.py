"""The Docker engine: whether one answers, and what `docker run` mounts."""

import shutil
import subprocess
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
