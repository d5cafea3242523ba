"""The rabbitmq chart's rendered objects, field by field, with Helm 3 and Helm 4."""

import re

import pytest

from tests.charts.brokercharts import RABBITMQ
from tests.charts.checks import (
    assert_generated_value_is_looked_up,
    assert_secrets_only_in_secrets,
    env_of,
)
from tests.support.helm import Helm, ci_values_files
from tests.support.manifests import Manifests

CHART = RABBITMQ.path
FULLNAME = RABBITMQ.fullname
SECRET_ENV = ("RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS", "RABBITMQ_ERLANG_COOKIE")
render, rabbitmq_container = RABBITMQ.render, RABBITMQ.broker


def config_lines(manifests: Manifests) -> list[str]:
    return manifests.get("ConfigMap", FULLNAME)["data"]["rabbitmq.conf"].splitlines()


def settings(manifests: Manifests) -> dict[str, str]:
    """rabbitmq.conf as key -> value (comments skipped)."""
    pairs = [
        line.split("=", 1) for line in config_lines(manifests) if line.strip() and not line.startswith("#")
    ]
    return {key.strip(): value.strip() for key, value in pairs}


def plain_env(container: dict) -> dict[str, str]:
    return {name: entry["value"] for name, entry in env_of(container).items() if "value" in entry}


def test_defaults_run_one_official_rabbitmq_behind_a_service(helm: Helm):
    rendered = render(helm)
    container = rabbitmq_container(rendered)
    assert container["image"] == "docker.io/library/rabbitmq:4.3"
    assert container["command"] == ["rabbitmq-server"], "the image's entrypoint is skipped"
    assert "args" not in container
    assert container["ports"] == [{"name": "amqp", "containerPort": 5672, "protocol": "TCP"}]
    assert rendered.get("Service", FULLNAME)["spec"]["ports"] == [
        {"name": "amqp", "port": 5672, "targetPort": "amqp", "protocol": "TCP"}
    ]


def test_configuration_has_no_guest_and_the_chart_settings(helm: Helm):
    rendered = render(helm)
    conf = settings(rendered)
    assert conf == {
        "listeners.tcp.default": "5672",
        "loopback_users.guest": "true",
        "consumer_timeout": "1800000",
        "total_memory_available_override_value": str(1024**3),
        "log.console": "true",
        "log.console.level": "info",
        "log.file": "false",
    }
    assert "default_user" not in conf
    assert "default_pass" not in conf
    assert rendered.get("ConfigMap", FULLNAME)["data"]["enabled_plugins"].strip() == "[]."
    mounts = {m["mountPath"]: m for m in rabbitmq_container(rendered)["volumeMounts"]}
    assert mounts["/etc/rabbitmq"] == {"name": "config", "mountPath": "/etc/rabbitmq", "readOnly": True}, (
        "the whole directory, so that the image's conf.d (guest from anywhere) is gone"
    )
    annotations = rendered.get("StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/config"]) == 64


@pytest.mark.parametrize(
    ("limit", "total"),
    [
        ("512Mi", 512 * 1024**2),
        ("2Gi", 2 * 1024**3),
        ("1G", 10**9),
        ("1500M", 1500 * 10**6),
        (2147483648, 2**31),
    ],
)
def test_memory_limit_is_the_memory_rabbitmq_plans_with(helm: Helm, limit: object, total: int):
    conf = settings(render(helm, {"resources": {"limits": {"memory": limit}}}))
    assert conf["total_memory_available_override_value"] == str(total)
    unbounded = settings(render(helm, {"resources": {"limits": {"memory": None}}}))
    assert "total_memory_available_override_value" not in unbounded


def test_configuration_follows_values(helm: Helm):
    values = {
        "service": {"port": 5673},
        "config": {"consumerTimeoutSeconds": 7200, "extra": "heartbeat = 30\n"},
        "management": {"enabled": True, "port": 15673},
    }
    rendered = render(helm, values)
    conf = settings(rendered)
    assert conf["listeners.tcp.default"] == "5673"
    assert conf["consumer_timeout"] == "7200000"
    assert conf["heartbeat"] == "30"
    assert conf["management.tcp.port"] == "15673"
    assert rendered.get("ConfigMap", FULLNAME)["data"]["enabled_plugins"].strip() == "[rabbitmq_management]."
    ports = rendered.get("Service", FULLNAME)["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [("amqp", 5673), ("management", 15673)]
    assert [(p["name"], p["containerPort"]) for p in rabbitmq_container(rendered)["ports"]] == [
        ("amqp", 5673),
        ("management", 15673),
    ]


def test_generated_credentials_and_cookie_are_in_the_secret_and_reach_the_node_by_reference(helm: Helm):
    rendered = render(helm)
    data = rendered.secret_data(FULLNAME)
    assert data["rabbitmq-username"] == "jobworker"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", data["rabbitmq-password"])
    assert re.fullmatch(r"[A-Za-z0-9]{64}", data["erlang-cookie"])
    env = env_of(rabbitmq_container(rendered))
    keys = {"RABBITMQ_DEFAULT_USER": "rabbitmq-username", "RABBITMQ_DEFAULT_PASS": "rabbitmq-password",
            "RABBITMQ_ERLANG_COOKIE": "erlang-cookie"}  # fmt: skip
    for name, key in keys.items():
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": FULLNAME, "key": key}}}
    assert_secrets_only_in_secrets(rendered, public_keys=RABBITMQ.public_keys)
    secret = rendered.get("Secret", FULLNAME)
    assert "annotations" not in secret["metadata"], "without persistence, uninstall removes everything"


def test_password_and_cookie_are_generated_per_install_and_looked_up_on_upgrade(helm: Helm):
    """`helm template` cannot look up the stored Secret: each render generates new values, and the
    template asks for the Secret the pods read."""
    first, second = render(helm).secret_data(FULLNAME), render(helm).secret_data(FULLNAME)
    assert first["rabbitmq-password"] != second["rabbitmq-password"]
    assert first["erlang-cookie"] != second["erlang-cookie"]
    assert_generated_value_is_looked_up(CHART, "rabbitmq-password")
    assert_generated_value_is_looked_up(CHART, "erlang-cookie")


def test_existing_secret_replaces_the_generated_user_but_the_cookie_stays_ours(helm: Helm):
    values = {"auth": {"existingSecret": "queue-auth", "existingSecretUsernameKey": "user",
                       "existingSecretPasswordKey": "pw"}}  # fmt: skip
    rendered = render(helm, values)
    assert set(rendered.secret_data(FULLNAME)) == {"erlang-cookie"}
    env = env_of(rabbitmq_container(rendered))
    assert env["RABBITMQ_DEFAULT_USER"]["valueFrom"]["secretKeyRef"] == {"name": "queue-auth", "key": "user"}
    assert env["RABBITMQ_DEFAULT_PASS"]["valueFrom"]["secretKeyRef"] == {"name": "queue-auth", "key": "pw"}
    assert env["RABBITMQ_ERLANG_COOKIE"]["valueFrom"]["secretKeyRef"] == {
        "name": FULLNAME,
        "key": "erlang-cookie",
    }
    test_env = env_of(rendered.get("Pod", f"{FULLNAME}-test-connection")["spec"]["containers"][0])
    assert test_env["AMQP_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "queue-auth", "key": "user"}
    assert test_env["AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "queue-auth", "key": "pw"}


def test_erlang_distribution_is_local_to_the_pod(helm: Helm):
    env = plain_env(rabbitmq_container(render(helm)))
    assert env["RABBITMQ_NODENAME"] == "rabbit@localhost"
    assert env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] == "-kernel inet_dist_use_interface {127,0,0,1}"
    assert env["ERL_EPMD_ADDRESS"] == "127.0.0.1"
    assert env["RUNNING_UNDER_SYSTEMD"] == "true", "the start script execs the VM, which gets SIGTERM"


def test_node_writes_only_to_its_volumes(helm: Helm):
    rendered = render(helm)
    container = rabbitmq_container(rendered)
    env = plain_env(container)
    assert env["HOME"] == "/var/lib/rabbitmq"
    assert env["RABBITMQ_MNESIA_BASE"] == "/var/lib/rabbitmq/mnesia"
    assert env["RABBITMQ_LOG_BASE"] == "/var/log/rabbitmq"
    assert env["RABBITMQ_CONFIG_FILE"] == "/etc/rabbitmq/rabbitmq.conf"
    assert env["RABBITMQ_ENABLED_PLUGINS_FILE"] == "/etc/rabbitmq/enabled_plugins"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {
        "/etc/rabbitmq": "config",
        "/var/lib/rabbitmq": "home",
        "/var/lib/rabbitmq/mnesia": "data",
        "/var/log/rabbitmq": "logs",
        "/tmp": "tmp",
    }
    volumes = {v["name"]: v for v in rendered.get("StatefulSet")["spec"]["template"]["spec"]["volumes"]}
    for name in ("home", "data", "logs", "tmp"):
        assert volumes[name] == {"name": name, "emptyDir": {}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_persistence_claims_a_volume_and_keeps_the_secret(helm: Helm):
    rendered = render(helm, {"persistence": {"enabled": True, "storageClass": "fast", "size": "5Gi"}})
    statefulset = rendered.get("StatefulSet")
    volumes = {v["name"] for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert volumes == {"config", "home", "logs", "tmp"}, "the cookie file stays off the claim"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    secret = rendered.get("Secret", FULLNAME)
    assert secret["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    claim = render(helm, {"persistence": {"enabled": True, "storageClass": "-"}}).get("StatefulSet")
    assert claim["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == ""


def test_probes_run_rabbitmq_diagnostics(helm: Helm):
    container = rabbitmq_container(render(helm))
    assert container["startupProbe"]["exec"]["command"] == [
        "rabbitmq-diagnostics",
        "--quiet",
        "check_running",
    ]
    assert container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"] == 300
    assert container["livenessProbe"]["exec"]["command"] == ["rabbitmq-diagnostics", "--quiet", "ping"]
    assert container["readinessProbe"]["exec"]["command"] == [
        "rabbitmq-diagnostics",
        "--quiet",
        "check_port_connectivity",
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["timeoutSeconds"] >= 10, "each check starts an Erlang VM"
    off = {name: {"enabled": False} for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    container = rabbitmq_container(render(helm, off))
    assert not {"startupProbe", "livenessProbe", "readinessProbe"} & set(container)


def test_network_policy_admits_clients_to_the_management_port_when_it_is_on(helm: Helm):
    """The rest of the policy is the library's, tested in test_broker_charts.py."""
    managed = render(helm, {"networkPolicy": {"enabled": True}, "management": {"enabled": True}})
    (rule,) = managed.get("NetworkPolicy", FULLNAME)["spec"]["ingress"]
    assert [port["port"] for port in rule["ports"]] == ["amqp", "management"]


def test_helm_test_pod_logs_in_over_amqp_through_the_service(helm: Helm):
    rendered = render(helm)
    container = rendered.get("Pod", f"{FULLNAME}-test-connection")["spec"]["containers"][0]
    assert container["image"] == rabbitmq_container(rendered)["image"]
    assert container["command"][:2] == ["bash", "-c"]
    env = env_of(container)
    assert env["AMQP_ADDRESS"]["value"] == f"{FULLNAME}:5672"
    assert env["AMQP_VHOST"]["value"] == "/"
    assert env["AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": FULLNAME, "key": "rabbitmq-password"}


@pytest.mark.parametrize("values_file", ci_values_files("rabbitmq"), ids=lambda path: path.name)
def test_ci_variants_give_the_node_its_credentials_and_cookie_from_the_secret(helm: Helm, values_file):
    rendered = helm.template(CHART, values_files=[values_file])
    for name in SECRET_ENV:
        assert "valueFrom" in env_of(rabbitmq_container(rendered))[name]


def test_all_value_checks_are_reported_at_once(helm: Helm):
    values = {"auth": {"username": "guest"}, "config": {"extra": "default_pass = x\n"},
              "management": {"enabled": True, "port": 5672}}  # fmt: skip
    error = helm.template_error(CHART, values)
    assert "auth.username must not be guest" in error
    assert "config.extra must not set" in error
    assert "management.port (5672) must differ from service.port (5672)" in error


def test_notes_say_how_to_connect(helm: Helm):
    notes = helm.notes(CHART, {})
    assert f"amqp://{FULLNAME}.batch.svc:5672/%2F" in notes
    assert (
        f"kubectl get secret --namespace batch {FULLNAME} -o jsonpath='{{.data.rabbitmq-password}}'" in notes
    )
    assert f"kubectl exec --namespace batch {FULLNAME}-0 -- rabbitmqctl list_queues" in notes
    assert "There is no guest user." in notes
    assert "config.consumerTimeoutSeconds" in notes
    assert "Persistence is off" in notes
    kept = helm.notes(CHART, {"persistence": {"enabled": True}, "management": {"enabled": True}})
    assert f"Secret {FULLNAME} outlive `helm uninstall`" in kept
    assert "http://127.0.0.1:15672/" in kept
