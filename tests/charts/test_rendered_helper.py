"""tests/support/rendered.py: pods of rendered manifests as local processes, as the kubelet would
run them. The fine-queue-job tests use it; so will the other job charts' tests."""

import base64
import sys
from pathlib import Path

import pytest

from tests.support.rendered import (
    COMPLETION_INDEX_FIELD,
    LocalPod,
    Manifests,
    completion_index_fields,
    controller_env,
    expand,
    image_entrypoint,
)


def manifests(*objects: dict) -> Manifests:
    return Manifests(list(objects))


SERVICE = {
    "kind": "Service",
    "metadata": {"name": "db", "namespace": "x"},
    "spec": {"ports": [{"port": 5432}]},
}
SECRET = {
    "kind": "Secret",
    "metadata": {"name": "creds"},
    "data": {"pw": base64.b64encode(b"s3cret").decode()},
}
CONFIG = {"kind": "ConfigMap", "metadata": {"name": "conf"}, "data": {"mode": "fast", "list.txt": "a\nb\n"}}


def pod(container: dict, volumes: list | None = None) -> dict:
    return {"kind": "Pod", "metadata": {"name": "p", "namespace": "x"},
            "spec": {"containers": [container], "volumes": volumes or []}}  # fmt: skip


def test_expand_follows_kubernetes_rules():
    variables = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)-$$(A)-$(C)-$A", variables) == "1-two-$(A)-$(C)-$A"


def test_entrypoint_comes_from_the_image_dockerfile():
    assert image_entrypoint("ghcr.io/jobworker/fine-queue-worker:0.1.0") == (["jobworker", "fine"], [])
    assert image_entrypoint("example.com/indexed-worker@sha256:" + "0" * 64)[0] == ["jobworker", "indexed"]
    with pytest.raises(FileNotFoundError, match=r"no .*unknown-image"):
        image_entrypoint("unknown-image:1")


def test_environment_is_resolved_from_the_rendered_objects(tmp_path: Path):
    container = {
        "name": "main",
        "command": ["sh", "-c", "echo $(URL)"],
        "envFrom": [{"configMapRef": {"name": "conf"}, "prefix": "CONF_"}],
        "env": [
            {"name": "URL", "value": "postgres://db.x.svc.cluster.local:5432/app"},
            {"name": "HOST", "value": "db"},
            {"name": "REPLICA", "value": "db-replica:5432"},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "mode"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "INDEX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['i']"}}},
            {"name": "DERIVED", "value": "$(MODE)-$(INDEX)"},
        ],
    }
    objects = manifests(SERVICE, SECRET, CONFIG, pod(container))
    fields = {"metadata.annotations['i']": "7"}
    local = LocalPod(objects, pod(container), tmp_path, addresses={"db": "127.0.0.1:15432"}, fields=fields)
    env = local.container("main").env
    assert env["URL"] == "postgres://127.0.0.1:15432/app"
    assert env["HOST"] == "127.0.0.1"
    assert env["REPLICA"] == "db-replica:5432", "another host that merely starts with the name"
    assert env["PASSWORD"] == "s3cret"  # noqa: S105 - the test Secret's value
    assert env["MODE"] == "fast"
    assert env["CONF_list.txt"] == "a\nb\n"
    assert env["POD"] == "p-local"
    assert env["DERIVED"] == "fast-7"
    assert local.container("main").argv == ["sh", "-c", "echo postgres://127.0.0.1:15432/app"]


def test_volumes_are_materialised_and_mount_paths_mapped(tmp_path: Path):
    container = {
        "name": "main",
        # The image's python, run as this checkout's: the checkout may itself lie under /tmp, a
        # mount path that must be rewritten in arguments but never in the program's own path.
        "command": ["python3", "-c", "pass"],
        "args": ["--list=/etc/conf/list.txt", "--scratch", "/tmp/x", "/etc/confx"],
        "env": [{"name": "SECRET_FILE", "value": "/run/creds/password"}],
        "volumeMounts": [
            {"name": "conf", "mountPath": "/etc/conf"},
            {"name": "creds", "mountPath": "/run/creds"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    volumes = [
        {"name": "conf", "configMap": {"name": "conf"}},
        {"name": "creds", "secret": {"secretName": "creds", "items": [{"key": "pw", "path": "password"}]}},
        {"name": "tmp", "emptyDir": {}},
    ]
    spec = pod(container, volumes)
    local = LocalPod(
        manifests(SECRET, CONFIG, spec), spec, tmp_path, programs={"python3": [sys.executable]}
    ).container("main")
    root = tmp_path / "volumes"
    assert local.argv[3:] == [f"--list={root}/conf/list.txt", "--scratch", f"{root}/tmp/x", "/etc/confx"]
    assert (root / "conf" / "list.txt").read_text() == "a\nb\n"
    assert Path(local.env["SECRET_FILE"]).read_text() == "s3cret"
    assert local.env["TMPDIR"] == str(root / "tmp")
    assert local.run().returncode == 0


def test_missing_objects_are_named(tmp_path: Path):
    reference = {"secretKeyRef": {"name": "absent", "key": "k"}}
    container = {"name": "main", "command": ["true"], "env": [{"name": "P", "valueFrom": reference}]}
    with pytest.raises(KeyError, match="Secret 'absent' is not rendered"):
        LocalPod(manifests(pod(container)), pod(container), tmp_path)
    plain = pod({"name": "m", "command": ["true"]})
    with pytest.raises(KeyError, match="Service 'nowhere'"):
        LocalPod(manifests(SERVICE, plain), plain, tmp_path, addresses={"nowhere": "127.0.0.1:1"})


def indexed_job(container: dict, volumes: list | None = None, init: dict | None = None) -> dict:
    spec = {"containers": [container], "volumes": volumes or []}
    if init:
        spec["initContainers"] = [init]
    return {"kind": "Job", "metadata": {"name": "j", "namespace": "x"},
            "spec": {"completionMode": "Indexed", "completions": 3, "template": {"spec": spec}}}  # fmt: skip


def test_indexed_job_containers_get_their_index_as_the_job_controller_gives_it(tmp_path: Path):
    """JOB_COMPLETION_INDEX is not in the template: the Job controller adds it to every container."""
    job = indexed_job({"name": "main", "command": ["true"]}, init={"name": "first", "command": ["true"]})
    local = LocalPod(manifests(job), job, tmp_path, fields=completion_index_fields(2))
    assert local.container("main").env["JOB_COMPLETION_INDEX"] == "2"
    assert local.container("first").env["JOB_COMPLETION_INDEX"] == "2"
    with pytest.raises(KeyError, match="JOB_COMPLETION_INDEX: no value for fieldRef"):
        LocalPod(manifests(job), job, tmp_path / "no-index")


def test_controller_env_keeps_a_container_s_own_index_and_leaves_other_workloads_alone():
    own = {"name": "main", "env": [{"name": "JOB_COMPLETION_INDEX", "value": "7"}]}
    assert controller_env(indexed_job(own), own) == own["env"]
    plain = {"name": "main", "env": [{"name": "A", "value": "1"}]}
    assert controller_env(pod(plain), plain) == plain["env"]
    added = controller_env(indexed_job(plain), plain)[-1]
    assert added == {
        "name": "JOB_COMPLETION_INDEX",
        "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}},
    }


def test_downward_api_volumes_hold_the_given_pod_fields(tmp_path: Path):
    container = {
        "name": "main",
        "command": ["cat", "/etc/podinfo/index"],
        "volumeMounts": [{"name": "podinfo", "mountPath": "/etc/podinfo"}],
    }
    items = [{"path": "index", "fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}},
             {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]  # fmt: skip
    job = indexed_job(container, [{"name": "podinfo", "downwardAPI": {"items": items}}])
    local = LocalPod(manifests(job), job, tmp_path, fields=completion_index_fields(1))
    podinfo = tmp_path / "volumes" / "podinfo"
    assert (podinfo / "index").read_text() == "1"
    assert (podinfo / "name").read_text() == "j-local"
    result = local.container("main").run()
    assert (result.returncode, result.stdout) == (0, b"1")
