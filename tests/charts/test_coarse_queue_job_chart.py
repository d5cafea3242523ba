"""The coarse-queue-job chart's rendered objects, field by field, with Helm 3 and Helm 4."""

import json
from pathlib import Path

import pytest

from jobworker.constants import ExitCode
from tests.charts.checks import assert_restricted, assert_secrets_only_in_secrets, env_of
from tests.charts.jobcharts import COARSE, JOBWORKER_VARIABLES, QUEUE_FRUITS, values_of
from tests.support.helm import Helm, ci_values_files

CHART = COARSE.path
JOB = COARSE.fullname
RABBITMQ = "demo-rabbitmq"
USERNAME_KEY = "rabbitmq-username"  # the user name is kept beside the password, but is no secret
FRUITS = QUEUE_FRUITS
WORK = COARSE.values
render, job_spec, pod_spec, pod_labels, worker = (
    COARSE.render, COARSE.job_spec, COARSE.pod_spec, COARSE.pod_labels, COARSE.worker
)  # fmt: skip


# --- the Job ---------------------------------------------------------------------------------------
def test_job_defaults_are_one_pod_per_item(helm: Helm):
    spec = job_spec(render(helm))
    assert spec["completions"] == len(FRUITS)
    assert spec["backoffLimit"] == len(FRUITS) * (3 - 1) + 6
    assert spec["suspend"] is False
    assert "completionMode" not in spec, "a plain NonIndexed Job: the queue hands out the items"


@pytest.mark.parametrize(
    ("text", "count"),
    [("apple\nbanana\n", 2), ("apple\n\n  \nbanana\r\ncherry", 4), ("\r\none\n\r\n", 1)],
)
def test_completions_count_the_items_file_as_the_seed_reads_it(helm: Helm, tmp_path: Path, text, count):
    """Blank lines are skipped and a trailing CR dropped (jobworker.items.parse_lines); a line of
    spaces is an item."""
    from jobworker.items import parse_lines  # noqa: PLC0415 - the reference the chart must match

    assert len(parse_lines(text.encode())) == count
    items = tmp_path / "items.txt"
    items.write_bytes(text.encode())
    rendered = helm.template(CHART, {"command": ["cat"]}, set_file={"itemsFile": items})
    assert job_spec(rendered)["completions"] == count
    assert job_spec(rendered)["backoffLimit"] == count * 2 + 6


def test_completions_may_be_given_as_the_number_of_items(helm: Helm):
    assert job_spec(render(helm, {"completions": len(FRUITS)}))["completions"] == len(FRUITS)


def test_large_numbers_render_as_integers(helm: Helm):
    """Helm reads numbers as floats and prints 1e+06 for a million; the Job must get an integer."""
    spec = job_spec(render(helm, {"activeDeadlineSeconds": 1000000, "backoffLimit": 2000000}))
    assert spec["activeDeadlineSeconds"] == 1000000
    assert spec["backoffLimit"] == 2000000


def test_backoff_limit_follows_max_attempts(helm: Helm):
    assert job_spec(render(helm, {"maxAttempts": 1}))["backoffLimit"] == 6
    assert job_spec(render(helm, {"maxAttempts": 5}))["backoffLimit"] == len(FRUITS) * 4 + 6


def test_without_items_completions_are_given_and_the_queue_is_left_alone(helm: Helm):
    rendered = helm.template(CHART, {"command": ["cat"], "completions": 3})
    assert job_spec(rendered)["completions"] == 3
    assert job_spec(rendered)["backoffLimit"] == 3 * 2 + 6
    assert "initContainers" not in pod_spec(rendered)
    assert "SEED_FILE" not in env_of(worker(rendered))
    assert rendered.find("ConfigMap", f"{JOB}-items") is None
    assert {v["name"] for v in pod_spec(rendered)["volumes"]} == {"tmp"}


def test_worker_options_reach_the_environment(helm: Helm):
    values = {
        "maxAttempts": 5,
        "waitSeconds": 30,
        "delivery": "arg",
        "logFormat": "json",
        "logLevel": "DEBUG",
        "connectTimeoutSeconds": 90,
        "consumerTimeoutSeconds": 7200,
    }
    env = values_of(worker(render(helm, values)))
    assert env["MAX_ATTEMPTS"] == "5"
    assert env["WAIT_SECONDS"] == "30"
    assert env["ITEM_DELIVERY"] == "arg"
    assert env["LOG_FORMAT"] == "json"
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["CONNECT_TIMEOUT"] == "90"
    assert env["CONSUMER_TIMEOUT"] == "7200"
    defaults = render(helm)
    assert "CONSUMER_TIMEOUT" not in values_of(worker(defaults)), "unset: the broker's consumer_timeout"
    for name in ("DRAIN", "PREFETCH", "IDLE_SECONDS"):
        assert name not in env_of(worker(defaults)), "one message per pod: never --drain"


def test_quorum_queue_is_how_the_worker_declares_the_queue_it_seeds(helm: Helm):
    assert values_of(worker(render(helm, {"quorumQueue": True})))["QUORUM_QUEUE"] == "true"
    assert "QUORUM_QUEUE" not in env_of(worker(render(helm)))
    unseeded = helm.template(CHART, {"command": ["cat"], "completions": 3, "quorumQueue": True})
    assert "QUORUM_QUEUE" not in env_of(worker(unseeded)), "no seed: the queue is someone else's"


def test_chart_sets_only_variables_the_worker_reads(helm: Helm):
    rendered = render(helm, {"consumerTimeoutSeconds": 60, "quorumQueue": True})
    assert set(env_of(worker(rendered))) <= JOBWORKER_VARIABLES


# --- RabbitMQ and its user ---------------------------------------------------------------------------
def test_bundled_rabbitmq_is_reached_by_service_name_with_the_user_from_its_secret(helm: Helm):
    rendered = render(helm)
    port = rendered.get("Service", RABBITMQ)["spec"]["ports"][0]["port"]
    data = rendered.secret_data(RABBITMQ)
    assert set(data) >= {"rabbitmq-username", "rabbitmq-password"}
    test_pod = rendered.get("Pod", f"{JOB}-test-queue")["spec"]["containers"][0]
    for container in (worker(rendered), test_pod):
        env = env_of(container)
        assert env["AMQP_URL"]["value"] == f"amqp://{RABBITMQ}:{port}/%2F", "no credentials in the URL"
        for name, key in (("AMQP_USERNAME", "rabbitmq-username"), ("AMQP_PASSWORD", "rabbitmq-password")):
            assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": RABBITMQ, "key": key}}}
    assert_secrets_only_in_secrets(rendered, public_keys={USERNAME_KEY})


def test_bundled_rabbitmq_with_its_own_existing_secret(helm: Helm):
    auth = {
        "existingSecret": "queue-auth",
        "existingSecretUsernameKey": "user",
        "existingSecretPasswordKey": "pw",
    }
    rendered = render(helm, {"rabbitmq": {"auth": auth}})
    env = env_of(worker(rendered))
    assert env["AMQP_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "queue-auth", "key": "user"}
    assert env["AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "queue-auth", "key": "pw"}


def test_bundled_rabbitmq_follows_its_name_overrides(helm: Helm):
    rendered = render(helm, {"rabbitmq": {"fullnameOverride": "shared-broker", "service": {"port": 5673}}})
    rendered.get("StatefulSet", "shared-broker")
    env = env_of(worker(rendered))
    assert env["AMQP_URL"]["value"] == "amqp://shared-broker:5673/%2F"
    assert env["AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "shared-broker"
    assert pod_labels(rendered)["jobworker.github.io/rabbitmq-client"] == "shared-broker"


def test_external_rabbitmq(helm: Helm):
    external = {
        "host": "mq.data.svc",
        "port": 5671,
        "vhost": "batch/jobs",
        "tls": True,
        "existingSecret": "mq-auth",
        "existingSecretUsernameKey": "u",
        "existingSecretPasswordKey": "p",
    }
    rendered = render(helm, {"rabbitmq": {"enabled": False}, "externalRabbitmq": external})
    assert rendered.all("StatefulSet") == []
    assert rendered.all("Secret") == []
    env = env_of(worker(rendered))
    assert env["AMQP_URL"]["value"] == "amqps://mq.data.svc:5671/batch%2Fjobs"
    assert env["AMQP_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "mq-auth", "key": "u"}
    assert env["AMQP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mq-auth", "key": "p"}
    assert "jobworker.github.io/rabbitmq-client" not in pod_labels(rendered)
    plain = render(helm, {"rabbitmq": {"enabled": False},
                          "externalRabbitmq": {"host": "10.0.0.5", "existingSecret": "mq-auth"}})  # fmt: skip
    assert env_of(worker(plain))["AMQP_URL"]["value"] == "amqp://10.0.0.5:5672/%2F"


def test_worker_pods_carry_the_label_the_rabbitmq_network_policy_admits(helm: Helm):
    rendered = render(helm)
    policy = rendered.get("NetworkPolicy", RABBITMQ)
    admitted = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert admitted.items() <= pod_labels(rendered).items()
    assert admitted.items() <= rendered.get("Pod", f"{JOB}-test-queue")["metadata"]["labels"].items()


# --- seeding ---------------------------------------------------------------------------------------
def test_items_are_seeded_by_every_worker_from_a_config_map(helm: Helm):
    rendered = render(helm, {"items": [*FRUITS, 42, "two\nlines"]})
    config_map = rendered.get("ConfigMap", f"{JOB}-items")
    assert json.loads(config_map["data"]["items.json"]) == [*FRUITS, 42, "two\nlines"]
    assert job_spec(rendered)["completions"] == len(FRUITS) + 2
    assert "initContainers" not in pod_spec(rendered), "the worker seeds in its own process"
    container = worker(rendered)
    assert values_of(container)["SEED_FILE"] == "/etc/jobworker/items/items.json"
    assert {"name": "items", "mountPath": "/etc/jobworker/items", "readOnly": True} in container[
        "volumeMounts"
    ]
    volumes = {v["name"]: v for v in pod_spec(rendered)["volumes"]}
    assert volumes["items"] == {"name": "items", "configMap": {"name": f"{JOB}-items"}}
    annotations = job_spec(rendered)["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/items"]) == 64


def test_items_file_is_seeded_verbatim_as_lines(helm: Helm, tmp_path: Path):
    items = tmp_path / "items.txt"
    items.write_text("apple\nbanana split\n\ncherry\n")
    rendered = helm.template(CHART, {"command": ["cat"]}, set_file={"itemsFile": items})
    assert rendered.get("ConfigMap", f"{JOB}-items")["data"] == {
        "items.txt": "apple\nbanana split\n\ncherry\n"
    }
    assert values_of(worker(rendered))["SEED_FILE"] == "/etc/jobworker/items/items.txt"
    assert job_spec(rendered)["completions"] == 3


def test_seeding_design_is_explained_in_the_template():
    """The choice of a seed in every worker is reasoned where it is made."""
    template = (CHART / "templates" / "job.yaml").read_text()
    assert "in its own process rather\n        than in a separate Job, hook or init container" in template
    assert "QUEUE.seeding" in template


# --- pod failure policy ----------------------------------------------------------------------------
@pytest.mark.parametrize("kube_version", ["1.26.0", "1.29.4", "1.31.0", "1.35.0"])
def test_pod_failure_policy_where_the_cluster_has_it(helm: Helm, kube_version: str):
    policy = job_spec(render(helm, kube_version=kube_version))["podFailurePolicy"]
    fail_job, count, ignore = policy["rules"]
    assert fail_job == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "worker", "operator": "In",
                        "values": [ExitCode.USAGE, ExitCode.NO_WORK]},
    }  # fmt: skip
    assert count == {
        "action": "Count",
        "onExitCodes": {"containerName": "worker", "operator": "In", "values": [ExitCode.ITEM_REQUEUED]},
    }
    assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}


def test_requeued_items_are_always_counted(helm: Helm):
    """Exit 5 needs a new pod for the item's next attempt: it is counted even with no other rule."""
    values = {"podFailurePolicy": {"failJobExitCodes": [], "ignoreDisruptions": False}}
    (rule,) = job_spec(render(helm, values))["podFailurePolicy"]["rules"]
    assert rule["action"] == "Count"
    assert rule["onExitCodes"]["values"] == [ExitCode.ITEM_REQUEUED]
    error = helm.template_error(CHART, {**WORK, "podFailurePolicy": {"failJobExitCodes": [5]}})
    assert "podFailurePolicy.failJobExitCodes must not contain 5" in error


# --- pods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("values_file", ci_values_files("coarse-queue-job"), ids=lambda path: path.name)
def test_ci_variants_stay_restricted_and_keep_passwords_in_secrets(helm: Helm, values_file: Path):
    rendered = helm.template(CHART, values_files=[values_file])
    assert_restricted(rendered)
    assert_secrets_only_in_secrets(rendered, public_keys={USERNAME_KEY})
    assert pod_spec(rendered)["automountServiceAccountToken"] is False
    for name in ("AMQP_USERNAME", "AMQP_PASSWORD"):
        assert "valueFrom" in env_of(worker(rendered))[name], name


def test_helm_test_pod_checks_the_queue_is_empty_and_nothing_dead_lettered(helm: Helm):
    pod = render(helm).get("Pod", f"{JOB}-test-queue")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][2]
    assert "jobworker status --json" in script
    assert '("ready", "consumers", "failed")' in script


def test_all_value_checks_are_reported_at_once(helm: Helm):
    values = {"command": ["cat"], "items": ["a"], "itemsFile": "b", "graceSeconds": 40,
              "podFailurePolicy": {"failJobExitCodes": [5]}}  # fmt: skip
    error = helm.template_error(CHART, values)
    assert "items and itemsFile are both set" in error
    assert "graceSeconds (40) must be below terminationGracePeriodSeconds (30)" in error
    assert "must not contain 5" in error


def test_defaults_pass_the_schema_and_ask_only_for_the_work(helm: Helm):
    """There is no sensible default program or item list: installing without them names what to set."""
    error = helm.template_error(CHART, {})
    assert "command is not set" in error
    assert "completions is not set and there are no items" in error
    assert "schema" not in error, "the defaults of values.yaml must satisfy values.schema.json"


# --- NOTES.txt -------------------------------------------------------------------------------------
def test_notes_say_how_to_follow_the_job(helm: Helm):
    notes = helm.notes(CHART, WORK)
    assert f"Job {JOB} needs {len(FRUITS)} successful worker pod(s), 2 at a time" in notes
    assert f"kubectl wait --namespace batch --for=condition=complete --timeout=24h job/{JOB}" in notes
    assert f"kubectl exec --namespace batch {RABBITMQ}-0 -- rabbitmqctl list_queues" in notes
    assert f"kubectl port-forward --namespace batch svc/{RABBITMQ} 5672:5672" in notes
    assert f"jobworker status --amqp-url amqp://127.0.0.1:5672/%2F --queue {JOB}" in notes
    assert f"-l job-name={JOB} -c worker" in notes
    assert f"Every worker first seeds the queue with the {len(FRUITS)} items of `items`" in notes
    assert "Fill the queue" not in notes


def test_notes_say_how_to_fill_the_queue_by_hand(helm: Helm):
    notes = helm.notes(CHART, {"command": ["cat"], "completions": 3})
    assert "the Job needs completions=3 messages" in notes
    assert "--set suspend=true" in notes
    assert f"jobworker seed --amqp-url amqp://127.0.0.1:5672/%2F --queue {JOB} apple banana cherry" in notes
    assert f"kubectl patch job --namespace batch {JOB}" in notes
