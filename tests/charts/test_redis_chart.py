"""The redis chart's rendered objects, field by field, with Helm 3 and Helm 4."""

import re

from tests.charts.brokercharts import REDIS
from tests.charts.checks import (
    assert_generated_value_is_looked_up,
    assert_secrets_only_in_secrets,
    env_of,
)
from tests.support.helm import Helm
from tests.support.manifests import Manifests

CHART = REDIS.path
FULLNAME = REDIS.fullname
render, redis_container = REDIS.render, REDIS.broker


def config_lines(manifests: Manifests) -> list[str]:
    return manifests.get("ConfigMap", FULLNAME)["data"]["redis.conf"].splitlines()


def test_defaults_run_one_official_redis_behind_a_service(helm: Helm):
    rendered = render(helm)
    container = redis_container(rendered)
    assert container["image"] == "docker.io/library/redis:8.2"
    assert container["command"] == ["redis-server"]
    assert container["args"][0] == "/etc/redis/redis.conf"
    assert container["ports"] == [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}]
    assert rendered.get("Service", FULLNAME)["spec"]["ports"][0]["port"] == 6379


def test_memory_is_bounded_below_the_container_limit_by_default(helm: Helm):
    rendered = render(helm)
    resources = redis_container(rendered)["resources"]
    assert resources == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }
    assert "maxmemory 400mb" in config_lines(rendered)


def test_queue_keys_are_never_evicted_and_the_append_only_file_is_on(helm: Helm):
    lines = config_lines(render(helm, {"config": {"maxmemory": "200mb"}}))
    assert "maxmemory-policy noeviction" in lines
    assert "maxmemory 200mb" in lines
    assert "appendonly yes" in lines
    assert "dir /data" in lines
    assert "port 6379" in lines


def test_generated_password_is_in_a_secret_and_reaches_the_server_by_reference(helm: Helm):
    rendered = render(helm)
    password = rendered.secret_data(FULLNAME)["redis-password"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
    container = redis_container(rendered)
    assert container["args"][1:] == ["--requirepass", "$(REDIS_PASSWORD)"]
    env = env_of(container)
    for name in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
        assert env[name] == {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": FULLNAME, "key": "redis-password"}},
        }
    assert_secrets_only_in_secrets(rendered)


def test_password_is_generated_per_install_never_a_fixed_default(helm: Helm):
    """`helm template` cannot look up the stored Secret: each render generates a new password, and
    the template asks for the Secret of the same name and key that the pods read."""
    first = render(helm).secret_data(FULLNAME)["redis-password"]
    second = render(helm).secret_data(FULLNAME)["redis-password"]
    assert first != second
    assert_generated_value_is_looked_up(CHART, "redis-password")


def test_existing_secret_replaces_the_generated_one(helm: Helm):
    rendered = render(helm, {"auth": {"existingSecret": "queue-auth", "existingSecretPasswordKey": "pw"}})
    assert rendered.all("Secret") == []
    env = env_of(redis_container(rendered))
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "queue-auth", "key": "pw"}
    test_pod = rendered.get("Pod", f"{FULLNAME}-test-connection")
    assert env_of(test_pod["spec"]["containers"][0])["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == {
        "name": "queue-auth",
        "key": "pw",
    }


def test_without_auth_there_is_no_password_anywhere(helm: Helm):
    rendered = render(helm, {"auth": {"enabled": False}})
    assert rendered.all("Secret") == []
    container = redis_container(rendered)
    assert "--requirepass" not in container["args"]
    assert "env" not in container
    assert "protected-mode no" in config_lines(rendered)


def test_probes_ping_with_the_password_from_the_environment(helm: Helm):
    container = redis_container(render(helm))
    for probe in ("livenessProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:2] == ["sh", "-c"]
        assert "redis-cli -h 127.0.0.1 -p 6379 ping" in command[2]
        assert "-a " not in command[2]
        assert "REDIS" not in command[2]
    assert "LOADING" in container["livenessProbe"]["exec"]["command"][2]
    assert "LOADING" not in container["readinessProbe"]["exec"]["command"][2]


def test_without_persistence_data_lives_in_an_empty_dir(helm: Helm):
    rendered = render(helm)
    statefulset = rendered.get("StatefulSet")
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert "volumeClaimTemplates" not in statefulset["spec"]
    mounts = {m["mountPath"]: m["name"] for m in redis_container(rendered)["volumeMounts"]}
    assert mounts == {"/etc/redis": "config", "/data": "data", "/tmp": "tmp"}


def test_persistence_claims_a_volume_per_pod(helm: Helm):
    values = {
        "persistence": {"enabled": True, "storageClass": "fast", "size": "5Gi", "appendfsync": "always"}
    }
    rendered = render(helm, values)
    statefulset = rendered.get("StatefulSet")
    volumes = {v["name"] for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert "data" not in volumes
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "appendfsync always" in config_lines(rendered)
    claim = render(helm, {"persistence": {"enabled": True, "storageClass": "-"}}).get("StatefulSet")
    assert claim["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == ""


def test_helm_test_pod_pings_through_the_service_with_the_password(helm: Helm):
    rendered = render(helm)
    container = rendered.get("Pod", f"{FULLNAME}-test-connection")["spec"]["containers"][0]
    assert f"redis-cli -h {FULLNAME} -p 6379 ping" in container["command"][2]
    assert 'test "$reply" = PONG' in container["command"][2]
    assert env_of(container)["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"]["name"] == FULLNAME


def test_notes_say_how_to_connect(helm: Helm):
    notes = helm.notes(CHART, {})
    assert f"redis://{FULLNAME}.batch.svc:6379/0" in notes
    assert f"kubectl get secret --namespace batch {FULLNAME} -o jsonpath='{{.data.redis-password}}'" in notes
    assert f"kubectl exec --namespace batch -it {FULLNAME}-0 -- redis-cli -p 6379" in notes
    assert 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 -p 6379 ping' in notes
    open_notes = helm.notes(CHART, {"auth": {"enabled": False}})
    assert "WARNING: auth.enabled is false" in open_notes
    assert "REDISCLI_AUTH" not in open_notes
