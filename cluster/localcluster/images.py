"""Images for the cluster's containerd, taken from the local Docker engine (no registry is needed).

Each image is imported once: it is labelled with the Docker image id it came from, and imported
again only when Docker holds a different image under that name (a rebuilt worker image).
"""

import logging
import subprocess

from localcluster.host import ClusterError
from localcluster.layout import CONTAINERD_NAMESPACE, Layout

log = logging.getLogger("localcluster")
SOURCE_LABEL = "io.jobworker.docker-image-id"


def import_images(layout: Layout, references: list[str]) -> None:
    ctr = [str(layout.program("ctr")), "--address", str(layout.containerd_socket), "-n", CONTAINERD_NAMESPACE]
    held = _imported(ctr)
    for reference in references:
        image_id = _docker(["image", "inspect", "--format", "{{.Id}}", reference]).strip()
        if held.get(_normalised(reference)) == image_id:
            continue
        save = subprocess.Popen(["docker", "save", reference], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [*ctr, "images", "import", "-"], stdin=save.stdout, capture_output=True, text=True, check=False
        )
        save.wait()
        if save.returncode != 0 or imported.returncode != 0:
            raise ClusterError(
                f"could not import {reference} into containerd: {imported.stderr.strip()[-300:]}"
            )
        subprocess.run(
            [*ctr, "images", "label", _normalised(reference), f"{SOURCE_LABEL}={image_id}"],
            capture_output=True,
            check=True,
        )
        log.info("imported %s", reference)


def _imported(ctr: list[str]) -> dict[str, str]:
    """The images containerd holds, by name, with the Docker image id each came from."""
    listing = subprocess.run([*ctr, "images", "ls"], capture_output=True, text=True, check=True).stdout
    held = {}
    for line in listing.splitlines()[1:]:
        name, *_, labels = line.split()
        for label in labels.split(","):
            key, _, value = label.partition("=")
            if key == SOURCE_LABEL:
                held[name] = value
    return held


def _normalised(reference: str) -> str:
    """The full name containerd gives a Docker reference (docker.io/library/... for short ones)."""
    name = reference.split("@", maxsplit=1)[0]
    first = name.split("/")[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _docker(args: list[str]) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout
