"""The stand-ins for the official images, and chart values pointed at them.

`make cluster` writes the image map (`cluster/images/build-standins --map`): one line per stand-in,
`OFFICIAL_REFERENCE STAND_IN_REFERENCE`. A chart names an image by `repository` and `tag` (the tag
empty for the chart's appVersion); `point_values` rewrites every such pair that names an official
image, wherever it sits in a values document, and nothing else. The charts' templates are never
touched: the cluster runs them exactly as a user's would, with other images.
"""

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Reference:
    repository: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> "Reference":
        repository, _, tag = text.rpartition(":")
        if not repository or "/" in tag:
            raise ValueError(f"not an image reference with a tag: {text!r}")
        return cls(repository, tag)

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


class ImageMap:
    """Official image -> its stand-in, read from the map file `make cluster` writes."""

    def __init__(self, pairs: Mapping[Reference, Reference]) -> None:
        self.pairs = dict(pairs)

    @classmethod
    def read(cls, path: Path) -> "ImageMap":
        pairs = {}
        for line in path.read_text().splitlines():
            if line.strip():
                official, stand_in = line.split()
                pairs[Reference.parse(official)] = Reference.parse(stand_in)
        return cls(pairs)

    def stand_in(self, repository: str, tag: str) -> Reference | None:
        """The stand-in for repository:tag; for an empty tag, for the repository's only entry."""
        matches = [s for o, s in self.pairs.items() if o.repository == repository and tag in ("", o.tag)]
        return matches[0] if len(matches) == 1 else None

    def for_official(self, official: str) -> str:
        """The stand-in for a full official reference, e.g. registry.k8s.io/pause:3.10.1."""
        found = self.pairs.get(Reference.parse(official))
        if found is None:
            raise KeyError(f"no stand-in for {official} in the image map")
        return str(found)

    def for_repository(self, repository: str) -> str:
        found = self.stand_in(repository, "")
        if found is None:
            raise KeyError(f"no single stand-in for {repository} in the image map")
        return str(found)

    def stand_ins(self) -> list[str]:
        return [str(reference) for reference in self.pairs.values()]


def point_values(values: object, images: ImageMap) -> object:
    """A copy of a values document with every official image's repository and tag replaced."""
    if isinstance(values, list):
        return [point_values(item, images) for item in values]
    if not isinstance(values, dict):
        return values
    pointed = {key: point_values(value, images) for key, value in values.items()}
    repository, tag = pointed.get("repository"), pointed.get("tag", "")
    if isinstance(repository, str) and isinstance(tag, str):
        found = images.stand_in(repository, tag)
        if found is not None:
            pointed.update(repository=found.repository, tag=found.tag)
    return pointed


def values_files(chart: Path) -> Iterator[Path]:
    yield chart / "values.yaml"
    yield from sorted((chart / "ci").glob("*-values.yaml"))


def point_charts(charts: Path, destination: Path, images: ImageMap) -> None:
    """Copy the charts in `charts` to `destination` with their values (defaults and ci files)
    pointed at the stand-ins, for `ct install`, which takes values only from the charts."""
    shutil.copytree(charts, destination, ignore=shutil.ignore_patterns("charts", "*.tgz"))
    for chart in sorted(path.parent for path in destination.glob("*/Chart.yaml")):
        for path in values_files(chart):
            document = yaml.safe_load(path.read_text())
            pointed = point_values(document, images)
            if pointed != document:
                path.write_text(yaml.safe_dump(pointed, sort_keys=False))
