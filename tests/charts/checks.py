"""Assertions shared by the chart tests: the Pod Security Standard and secrets kept out of sight."""

import base64
import json
from collections.abc import Collection, Mapping
from pathlib import Path

from tests.support.helm import chart_path
from tests.support.manifests import Manifests


def restricted_violations(spec: Mapping) -> list[str]:
    """Where a pod spec breaks the Pod Security Standard "restricted" (and our own rules on top:
    a numeric non-root user, a read-only root filesystem, no ServiceAccount token)."""
    problems = []
    pod = spec.get("securityContext") or {}
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{field} is set")
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            problems.append(f"volume {volume['name']} is a hostPath")
    if (pod.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("pod seccompProfile is not RuntimeDefault")
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        name = container["name"]
        context = container.get("securityContext") or {}
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if (context.get("capabilities") or {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities do not drop ALL")
        if (context.get("capabilities") or {}).get("add"):
            problems.append(f"{name}: adds capabilities")
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if not (context.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not set")
        user = context.get("runAsUser", pod.get("runAsUser"))
        if not isinstance(user, int) or user == 0:
            problems.append(f"{name}: runAsUser {user!r} is not a numeric non-root user")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: the root filesystem is writable")
        if "seccompProfile" in context and context["seccompProfile"].get("type") == "Unconfined":
            problems.append(f"{name}: seccompProfile Unconfined")
        for port in container.get("ports", []):
            if "hostPort" in port:
                problems.append(f"{name}: hostPort")
    return problems


def assert_restricted(manifests: Manifests) -> None:
    """Every pod the manifests create, hook pods included, passes the restricted standard."""
    specs = manifests.pod_specs()
    assert specs, "the manifests create no pods"
    for where, spec in specs:
        assert restricted_violations(spec) == [], where


def secret_values(manifests: Manifests, public_keys: Collection[str] = ()) -> list[str]:
    """Every value held in a rendered Secret, decoded, but those under `public_keys` (a user name
    kept beside its password is no secret)."""
    values = []
    for secret in manifests.all("Secret"):
        values += [
            base64.b64decode(v).decode()
            for k, v in (secret.get("data") or {}).items()
            if k not in public_keys
        ]
        values += [v for k, v in (secret.get("stringData") or {}).items() if k not in public_keys]
    return values


def assert_secrets_only_in_secrets(manifests: Manifests, public_keys: Collection[str] = ()) -> None:
    """No Secret's value (but those under `public_keys`), plain or base64-encoded, appears in any
    other rendered object."""
    for value in secret_values(manifests, public_keys):
        assert len(value) >= 8, "a secret this short would match by chance"
        encoded = base64.b64encode(value.encode()).decode()
        for obj in manifests:
            if obj["kind"] == "Secret":
                continue
            text = json.dumps(obj)
            assert value not in text, f"{obj['kind']}/{obj['metadata']['name']} holds a Secret's value"
            assert encoded not in text, f"{obj['kind']}/{obj['metadata']['name']} holds a Secret's value"


def env_of(container: Mapping) -> dict[str, dict]:
    """A container's env list as name -> entry."""
    return {entry["name"]: entry for entry in container.get("env", [])}


def assert_generated_value_is_looked_up(chart: Path, key: str) -> None:
    """The chart's Secret generates `key` with jobworker-common's helper, which first looks up the
    value stored in the release's Secret (named by the chart's full name, as the pods read it), so
    that `helm upgrade` keeps it."""
    helper = (chart_path("jobworker-common") / "templates" / "_secrets.tpl").read_text()
    assert 'lookup "v1" "Secret" $.Release.Namespace (include "jobworker-common.names.fullname" $)' in helper
    assert "index ($existing.data | default dict) .key" in helper
    call = f'include "jobworker-common.secrets.generatedB64" (dict "context" . "key" "{key}"'
    assert call in (chart / "templates" / "secret.yaml").read_text()
