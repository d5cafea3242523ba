"""The objects of a rendered chart (`helm template`), for the chart tests to read."""

import base64
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_FIELD = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
WORKLOAD_KINDS = ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


@dataclass(frozen=True)
class Manifests:
    """The objects of a rendered chart, in output order."""

    objects: list[dict]

    @classmethod
    def parse(cls, text: str) -> "Manifests":
        return cls([doc for doc in yaml.safe_load_all(text) if doc])

    def __iter__(self):
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def all(self, kind: str) -> list[dict]:
        return [obj for obj in self.objects if obj.get("kind") == kind]

    def find(self, kind: str, name: str) -> dict | None:
        return next((obj for obj in self.all(kind) if obj["metadata"]["name"] == name), None)

    def get(self, kind: str, name: str | None = None) -> dict:
        """The one object of `kind` (named `name`, when given); an AssertionError otherwise."""
        found = [obj for obj in self.all(kind) if name is None or obj["metadata"]["name"] == name]
        if len(found) != 1:
            names = [obj["metadata"]["name"] for obj in self.all(kind)]
            raise AssertionError(f"expected one {kind}{f' {name!r}' if name else ''}, rendered: {names}")
        return found[0]

    def secret_data(self, name: str) -> dict[str, str]:
        """A rendered Secret's data, decoded (stringData included)."""
        secret = self.get("Secret", name)
        data = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
        data.update(secret.get("stringData") or {})
        return data

    def pod_specs(self) -> list[tuple[str, dict]]:
        """(kind/name, pod spec) of every pod the manifests would create, hook pods included."""
        specs = []
        for obj in self.objects:
            spec = pod_spec(obj)
            if spec is not None:
                specs.append((f"{obj['kind']}/{obj['metadata']['name']}", spec))
        return specs


def pod_spec(obj: Mapping) -> dict | None:
    """The pod spec inside a workload object, or None for objects that create no pods."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in WORKLOAD_KINDS:
        return obj["spec"]["template"]["spec"]
    return None
