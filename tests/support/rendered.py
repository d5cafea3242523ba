"""Rendered manifests, and running a workload's containers as local processes.

A chart test that only reads YAML can pass while the pod it describes would never work. Here a
pod of a rendered Job (or Deployment, StatefulSet, Pod) is run the way the kubelet would run it,
but as local processes against local servers: init containers one after the other, then the main
containers, each with

- its argv: `command` + `args`, or the image's ENTRYPOINT (read from images/<name>/Dockerfile)
  when `command` is unset, with `$(VAR)` references expanded as Kubernetes expands them;
- its environment: plain values, secretKeyRef from the rendered Secrets, configMapKeyRef from the
  rendered ConfigMaps, fieldRef from given pod fields, envFrom; in an Indexed Job, also
  JOB_COMPLETION_INDEX, which the Job controller adds to every container (`fields` gives the
  index, see completion_index_fields);
- its volumes: ConfigMaps and Secrets materialised as files, downward API volumes as files of the
  given pod fields, emptyDirs as directories shared by the pod's containers; every mountPath found
  in an argument or a variable is replaced by the local directory;
- its peers: the host names of rendered Services (short and qualified) mapped to local addresses.

Programs named in `programs` (by default `jobworker`) run from this checkout's virtual environment.
"""

import base64
import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.images import Mount, docker_run_argv
from tests.support.processes import JOBWORKER, worker_env

IMAGES = Path(__file__).resolve().parents[2] / "images"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_FIELD = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
DEFAULT_PROGRAMS: Mapping[str, Sequence[str]] = {"jobworker": JOBWORKER}
WORKLOAD_KINDS = ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
_VAR_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


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


def completion_index_fields(index: int) -> dict[str, str]:
    """The pod fields of the pod of an Indexed Job with this completion index (its annotation)."""
    return {COMPLETION_INDEX_FIELD: str(index)}


def controller_env(workload: Mapping, container: Mapping) -> list[dict]:
    """A container's env as the workload's controller hands it to the kubelet.

    The Job controller adds JOB_COMPLETION_INDEX, from the pod's completion index annotation, to
    every container and init container of an Indexed Job's pods, unless the container already
    has it; other workloads add nothing.
    """
    env = [dict(entry) for entry in container.get("env", [])]
    indexed = workload.get("kind") == "Job" and workload["spec"].get("completionMode") == "Indexed"
    if indexed and all(entry["name"] != COMPLETION_INDEX_ENV for entry in env):
        env.append(
            {"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}}}
        )
    return env


def image_entrypoint(image: str, images: Path = IMAGES) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD (exec form) of images/<name>/Dockerfile, for an image reference."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    dockerfile = images / name / "Dockerfile"
    if not dockerfile.is_file():
        raise FileNotFoundError(f"no {dockerfile} for image {image!r}: give the container a command")
    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in dockerfile.read_text().splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "ENTRYPOINT":
            entrypoint, cmd = json.loads(rest), []  # a new ENTRYPOINT resets CMD, as in Docker
        elif instruction.upper() == "CMD":
            cmd = json.loads(rest)
    return entrypoint, cmd


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ is a literal $, the rest stays."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return variables.get(match.group(1), match.group(0))

    return _VAR_REFERENCE.sub(replace, text)


@dataclass
class LocalContainer:
    """One container of a pod, ready to run as a local process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    init: bool = False

    def start(self, **popen: object) -> subprocess.Popen:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.argv, env=worker_env(self.env), **popen)

    def run(self, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv, env=worker_env(self.env), capture_output=True, timeout=timeout,
                              check=False)  # fmt: skip


@dataclass
class DockerContainer:
    """One container of a pod, ready to run with `docker run` (see LocalPod.docker_containers)."""

    name: str
    image: str
    argv: list[str]
    docker_name: str  # the running container's name, to remove it after a forced stop

    def start(self, **popen: object) -> subprocess.Popen:
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(self.argv, **popen)

    def remove(self) -> None:
        """Remove the container: killing `docker run` itself would leave it running."""
        subprocess.run(["docker", "rm", "--force", self.docker_name], capture_output=True, check=False)


@dataclass
class LocalPod:
    """One pod of a rendered workload, its volumes materialised under `directory`.

    `addresses` maps a Service name (or "name:port" for a Service with several ports) to the
    local "host:port" that stands in for it; `secrets` adds Secrets that the chart expects to exist
    already (existingSecret values); `fields` gives fieldRef values such as
    "metadata.annotations['batch.kubernetes.io/job-completion-index']".
    """

    manifests: Manifests
    workload: dict
    directory: Path
    addresses: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)
    programs: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_PROGRAMS))
    images: Path = IMAGES

    def __post_init__(self) -> None:
        spec = pod_spec(self.workload)
        if spec is None:
            raise ValueError(f"{self.workload.get('kind')} creates no pods")
        self.spec = spec
        self.namespace = self.workload["metadata"].get("namespace", "default")
        self.name = f"{self.workload['metadata']['name']}-local"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.volumes = {volume["name"]: self._materialise(volume) for volume in spec.get("volumes", [])}
        self.host_patterns = self._host_patterns()
        self.init_containers = [self._container(c, init=True) for c in spec.get("initContainers", [])]
        self.containers = [self._container(c, init=False) for c in spec["containers"]]
        self.init_results: list[subprocess.CompletedProcess] = []

    def container(self, name: str) -> LocalContainer:
        for container in [*self.init_containers, *self.containers]:
            if container.name == name:
                return container
        raise KeyError(f"pod has no container {name!r}")

    # --- volumes -----------------------------------------------------------------------------------
    def _materialise(self, volume: Mapping) -> Path | None:
        """The local directory of a volume; None for kinds that cannot exist locally."""
        path = self.directory / "volumes" / volume["name"]
        if "emptyDir" in volume:
            path.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volume:
            source = volume["configMap"]
            found = self.manifests.find("ConfigMap", source["name"])
            if found is None:
                raise KeyError(f"volume {volume['name']!r}: ConfigMap {source['name']!r} is not rendered")
            self._write_files(path, found.get("data") or {}, source.get("items"))
        elif "secret" in volume:
            source = volume["secret"]
            self._write_files(path, self._secret(source["secretName"]), source.get("items"))
        elif "downwardAPI" in volume:
            files = {}
            for item in volume["downwardAPI"].get("items", []):
                if "fieldRef" not in item:
                    raise ValueError(f"volume {volume['name']!r}: only fieldRef items have a local form")
                files[item["path"]] = self._field(item["fieldRef"]["fieldPath"], f"volume {volume['name']}")
            self._write_files(path, files, None)
        else:
            return None
        return path

    @staticmethod
    def _write_files(path: Path, data: Mapping[str, str], items: Iterable[Mapping] | None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        wanted = {item["key"]: item["path"] for item in items} if items else {key: key for key in data}
        for key, relative in wanted.items():
            target = path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[key])

    def _mounts(self, container: Mapping) -> list[tuple[str, Path]]:
        """(mountPath, local path) of a container's mounts, longest mountPath first."""
        mounts = []
        for mount in container.get("volumeMounts", []):
            local = self.volumes.get(mount["name"])
            if local is None:
                raise KeyError(f"{container['name']!r} mounts {mount['name']!r}, a volume with no local form")
            if mount.get("subPath"):
                local = local / mount["subPath"]
            mounts.append((mount["mountPath"].rstrip("/") or "/", local))
        return sorted(mounts, key=lambda pair: len(pair[0]), reverse=True)

    # --- names and values ---------------------------------------------------------------------------
    def _secret(self, name: str) -> dict[str, str]:
        if name in self.secrets:
            return dict(self.secrets[name])
        if self.manifests.find("Secret", name) is None:
            raise KeyError(f"Secret {name!r} is not rendered: pass it in `secrets`")
        return self.manifests.secret_data(name)

    def _field(self, path: str, where: str) -> str:
        """A pod field (fieldRef fieldPath): the pod's name and namespace, or one given in `fields`."""
        pod_fields = {"metadata.name": self.name, "metadata.namespace": self.namespace, **self.fields}
        if path not in pod_fields:
            raise KeyError(f"{where}: no value for fieldRef {path!r}: pass it in `fields`")
        return pod_fields[path]

    def _config_map(self, name: str) -> dict[str, str]:
        found = self.manifests.find("ConfigMap", name)
        if found is None:
            raise KeyError(f"ConfigMap {name!r} is not rendered")
        return dict(found.get("data") or {})

    def _host_patterns(self) -> list[tuple[re.Pattern, str]]:
        """Regexes replacing a Service's host names (with its port, or alone) by a local address."""
        patterns = []
        for key, local in self.addresses.items():
            name, _, port = key.partition(":")
            service = self.manifests.find("Service", name)
            if service is None:
                raise KeyError(f"address given for Service {name!r}, which is not rendered")
            ports = [str(p["port"]) for p in service["spec"]["ports"]]
            if not port:
                if len(ports) != 1:
                    raise ValueError(f"Service {name!r} has ports {ports}: key the address as '{name}:PORT'")
                port = ports[0]
            namespace = service["metadata"].get("namespace", self.namespace)
            host = re.escape(name) + rf"(?:\.{re.escape(namespace)}(?:\.svc(?:\.cluster\.local)?)?)?"
            local_host = local.rsplit(":", 1)[0]
            patterns.append((re.compile(rf"(?<![\w.-]){host}:{port}(?![0-9])"), local))
            patterns.append((re.compile(rf"(?<![\w.-]){host}(?![\w.:-])"), local_host))
        return patterns

    def _localise(self, text: str, mounts: Sequence[tuple[str, Path]]) -> str:
        """Service host names and mount paths in `text` replaced by their local stand-ins.

        Mount paths are replaced in one pass (longest first), so that a local directory which
        happens to lie under another mount path (/tmp) is never rewritten again.
        """
        for pattern, replacement in self.host_patterns:
            text = pattern.sub(replacement, text)
        if not mounts:
            return text
        local_of = {mount_path: str(local) for mount_path, local in mounts}
        alternatives = "|".join(re.escape(mount_path) for mount_path, _ in mounts)
        pattern = re.compile(rf"(?<![\w.-])({alternatives})(?=/|$|[^\w.-])")
        return pattern.sub(lambda match: local_of[match.group(1)], text)

    def _env(self, container: Mapping) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                values = self._config_map(source["configMapRef"]["name"])
            else:
                values = self._secret(source["secretRef"]["name"])
            env.update({prefix + key: value for key, value in values.items()})
        for variable in controller_env(self.workload, container):
            name = variable["name"]
            if "value" in variable:
                env[name] = expand(str(variable["value"]), env)
                continue
            reference = variable.get("valueFrom", {})
            if "secretKeyRef" in reference:
                ref = reference["secretKeyRef"]
                env[name] = self._secret(ref["name"])[ref["key"]]
            elif "configMapKeyRef" in reference:
                ref = reference["configMapKeyRef"]
                env[name] = self._config_map(ref["name"])[ref["key"]]
            elif "fieldRef" in reference:
                env[name] = self._field(reference["fieldRef"]["fieldPath"], f"env {name}")
            else:
                raise ValueError(f"env {name}: unsupported source {sorted(reference)}")
        return env

    def _container(self, container: Mapping, init: bool) -> LocalContainer:
        mounts = self._mounts(container)
        env = {name: self._localise(value, mounts) for name, value in self._env(container).items()}
        tmp = dict(mounts).get("/tmp")
        if tmp is not None:
            env.setdefault("TMPDIR", str(tmp))  # the container's /tmp volume is where temp files go
        if "command" in container:
            argv = [*container["command"], *container.get("args", [])]
        else:
            entrypoint, cmd = image_entrypoint(container["image"], self.images)
            argv = [*entrypoint, *container.get("args", cmd)]
        argv = [self._localise(expand(str(arg), env), mounts) for arg in argv]
        if not argv:
            raise ValueError(f"container {container['name']!r} has no command and its image no ENTRYPOINT")
        program = self.programs.get(argv[0])
        if program is not None:
            argv = [*program, *argv[1:]]
        return LocalContainer(container["name"], argv, env, init)

    # --- as Docker containers -------------------------------------------------------------------------
    def docker_containers(self, image_for: Callable[[str], str] = lambda image: image) -> tuple[list, list]:
        """(init, main) containers as `docker run` commands of their own images.

        Unlike the local processes, nothing is rewritten but the Services' host names (the containers
        share the host's network): volumes are bind-mounted at their mountPaths, the image keeps its
        own ENTRYPOINT unless `command` replaces it, and the pod's user and read-only root apply.
        `image_for` maps an image reference to the one to run (a locally built tag, say).
        """
        return (
            [self._docker_container(c, image_for) for c in self.spec.get("initContainers", [])],
            [self._docker_container(c, image_for) for c in self.spec["containers"]],
        )

    def _docker_container(self, container: Mapping, image_for: Callable[[str], str]) -> "DockerContainer":
        env = {name: self._localise(value, ()) for name, value in self._env(container).items()}
        mounts = []
        for mount in container.get("volumeMounts", []):
            local = self.volumes.get(mount["name"])
            if local is None:
                raise KeyError(f"{container['name']!r} mounts {mount['name']!r}, a volume with no local form")
            if "emptyDir" in next(v for v in self.spec["volumes"] if v["name"] == mount["name"]):
                local.chmod(0o1777)  # any container user may write, as in an emptyDir with fsGroup
            source = local / mount["subPath"] if mount.get("subPath") else local
            mounts.append(Mount(source, mount["mountPath"], read_only=bool(mount.get("readOnly"))))
        security = {**(self.spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
        user = None
        if "runAsUser" in security:
            user = f"{security['runAsUser']}" + (
                f":{security['runAsGroup']}" if "runAsGroup" in security else ""
            )
        command = [self._localise(expand(str(arg), env), ()) for arg in container.get("command", [])]
        args = [self._localise(expand(str(arg), env), ()) for arg in container.get("args", [])]
        argv = docker_run_argv(
            image_for(container["image"]),
            command=command or None,
            args=args,
            env=env,
            mounts=mounts,
            user=user,
            read_only=bool(security.get("readOnlyRootFilesystem")),
            tmpfs=all(mount.target != "/tmp" for mount in mounts),
            name=(docker_name := f"{self.name}-{container['name']}-{uuid.uuid4().hex[:6]}"),
        )
        return DockerContainer(container["name"], container["image"], argv, docker_name)

    # --- running --------------------------------------------------------------------------------------
    def run_init_containers(self, timeout: float = 120) -> list[subprocess.CompletedProcess]:
        """Run the init containers in order, as the kubelet does; stop at the first failure."""
        results = []
        for container in self.init_containers:
            result = container.run(timeout)
            results.append(result)
            if result.returncode != 0:
                break
        return results

    def start(self, timeout: float = 120) -> list[subprocess.Popen]:
        """Init containers to completion (their results kept in `init_results`), then every main
        container started; AssertionError when an init container fails, as the kubelet would not
        start the others either."""
        self.init_results = self.run_init_containers(timeout)
        for container, result in zip(self.init_containers, self.init_results, strict=False):
            if result.returncode != 0:
                raise AssertionError(
                    f"init container {container.name} exited {result.returncode}: {result.stderr.decode()}"
                )
        return [container.start() for container in self.containers]
