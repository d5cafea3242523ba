"""The stand-ins for the official images, and chart values pointed at them.

`make cluster` writes the image map (`cluster/images/build-standins --map`): one line per stand-in,
`OFFICIAL_REFERENCE STAND_IN_REFERENCE`. A chart names an image by `repository` and `tag` (the tag
empty for the chart's appVersion); `point_values` rewrites every such pair that names an official
image, wherever it sits in a values document, and nothing else. The charts' templates are never
touched: the cluster runs them exactly as a user's would, with other images.
"""

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def stand_in_values(chart: Path, values: Mapping[str, Any], images: ImageMap) -> dict[str, Any]:
    """`values` for installing `chart`, plus what points each image it would use, its bundled
    (file://) dependencies' included, at the stand-ins: only those keys are added or changed."""
    given = dict(values)
    effective = _merge(chart_defaults(chart), given)
    return _merge(given, _changes(effective, point_values(effective, images)))


def chart_defaults(chart: Path) -> dict[str, Any]:
    """A chart's values.yaml, with each file:// dependency's defaults under its name or alias."""
    defaults = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for dependency in yaml.safe_load((chart / "Chart.yaml").read_text()).get("dependencies") or []:
        repository = dependency.get("repository", "")
        if repository.startswith("file://"):
            key = dependency.get("alias") or dependency["name"]
            bundled = chart_defaults((chart / repository.removeprefix("file://")).resolve())
            defaults[key] = _merge(bundled, defaults.get(key) or {})
    return defaults


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of `after` that differ from `before`, as a nested map."""
    changed: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = _changes(old, value)
            if nested:
                changed[key] = nested
        elif value != old:
            changed[key] = value
    return changed


def point_charts(charts: Path, destination: Path, images: ImageMap) -> None:
    """Copy the charts in `charts` to `destination` with each ci/*-values.yaml given the image
    values of `stand_in_values`, for `ct install`, which takes values only from those files. The
    charts themselves (templates, values.yaml) are copied unchanged."""
    shutil.copytree(charts, destination, ignore=shutil.ignore_patterns("charts", "*.tgz"))
    for chart in sorted(path.parent for path in destination.glob("*/Chart.yaml")):
        for path in sorted((chart / "ci").glob("*-values.yaml")):
            values = yaml.safe_load(path.read_text()) or {}
            path.write_text(yaml.safe_dump(stand_in_values(chart, values, images), sort_keys=False))
