"""The fine-queue-job chart's rendered objects, field by field, with Helm 3 and Helm 4."""

import json
from pathlib import Path

import pytest

from jobworker.constants import ExitCode
from tests.charts.checks import assert_restricted, assert_secrets_only_in_secrets, env_of
from tests.charts.jobcharts import FINE, JOBWORKER_VARIABLES, values_of
from tests.support.helm import Helm, ci_values_files

CHART = FINE.path
JOB = FINE.fullname
REDIS = "demo-redis"
FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
PROGRAM = FINE.values
render, job_spec, pod_spec, pod_labels, worker = (
    FINE.render, FINE.job_spec, FINE.pod_spec, FINE.pod_labels, FINE.worker
)  # fmt: skip


# --- the Job ---------------------------------------------------------------------------------------
def test_job_defaults_are_a_work_queue_without_completions(helm: Helm):
    spec = job_spec(render(helm))
    assert "completions" not in spec
    assert spec["backoffLimit"] == 6
    assert spec["suspend"] is False


def test_completions_may_be_given(helm: Helm):
    """Unset by default: the Job is complete when one worker exits 0 and all have exited."""
    assert job_spec(render(helm, {"completions": 8}))["completions"] == 8


def test_worker_options_reach_the_environment(helm: Helm):
    values = {"maxAttempts": 5, "leaseSeconds": 120, "batchSize": 4, "waitSeconds": 30, "delivery": "arg",
              "logFormat": "json", "logLevel": "DEBUG", "connectTimeoutSeconds": 90}  # fmt: skip
    env = values_of(worker(render(helm, values)))
    assert env["MAX_ATTEMPTS"] == "5"
    assert env["LEASE_SECONDS"] == "120"
    assert env["BATCH_SIZE"] == "4"
    assert env["WAIT_SECONDS"] == "30"
    assert env["ITEM_DELIVERY"] == "arg"
    assert env["LOG_FORMAT"] == "json"
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["CONNECT_TIMEOUT"] == "90"
    assert "BATCH_SIZE" not in values_of(worker(render(helm))), "unset: the worker picks by mode"
    assert "WAIT_FOR_SEAL" not in values_of(worker(render(helm))), "the docs' semantics without items"
    assert values_of(worker(render(helm, {"waitForSeal": True})))["WAIT_FOR_SEAL"] == "true"


def test_handler_replaces_the_command(helm: Helm):
    rendered = helm.template(CHART, {"handler": "mypackage.tasks:process"})
    container = worker(rendered)
    assert "args" not in container
    env = values_of(container)
    assert env["HANDLER"] == "mypackage.tasks:process"
    assert "ITEM_DELIVERY" not in env


def test_chart_sets_only_variables_the_worker_reads(helm: Helm):
    rendered = render(helm, {"items": ["a"], "batchSize": 2, "waitForSeal": True})
    assert set(env_of(worker(rendered))) <= JOBWORKER_VARIABLES


# --- Redis and its password ------------------------------------------------------------------------
def test_bundled_redis_is_reached_by_service_name_with_the_password_from_its_secret(helm: Helm):
    rendered = render(helm, {"items": FRUITS})
    service = rendered.get("Service", REDIS)
    password_key = "redis-password"  # noqa: S105 - the key's name in the redis chart's Secret
    assert password_key in rendered.secret_data(REDIS)
    test_pod = rendered.get("Pod", f"{JOB}-test-queue")["spec"]["containers"][0]
    for container in (worker(rendered), test_pod):
        env = env_of(container)
        assert env["REDIS_URL"]["value"] == f"redis://{REDIS}:{service['spec']['ports'][0]['port']}/0"
        assert env["REDIS_PASSWORD"] == {
            "name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": REDIS, "key": password_key}},
        }
    assert_secrets_only_in_secrets(rendered)


def test_bundled_redis_with_its_own_existing_secret(helm: Helm):
    values = {"redis": {"auth": {"existingSecret": "queue-auth", "existingSecretPasswordKey": "pw"}}}
    rendered = render(helm, values)
    assert rendered.all("Secret") == []
    ref = env_of(worker(rendered))["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "queue-auth", "key": "pw"}


def test_bundled_redis_without_auth_gives_no_password(helm: Helm):
    rendered = render(helm, {"redis": {"auth": {"enabled": False}}})
    assert "REDIS_PASSWORD" not in env_of(worker(rendered))


def test_bundled_redis_follows_its_name_overrides(helm: Helm):
    rendered = render(helm, {"redis": {"fullnameOverride": "shared-queue", "service": {"port": 6380}}})
    rendered.get("StatefulSet", "shared-queue")
    env = env_of(worker(rendered))
    assert env["REDIS_URL"]["value"] == "redis://shared-queue:6380/0"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "shared-queue"
    labels = pod_labels(rendered)
    assert labels["jobworker.github.io/redis-client"] == "shared-queue"


def test_external_redis(helm: Helm):
    external = {"host": "redis.data.svc", "port": 6380, "database": 2, "tls": True,
                "existingSecret": "ext-auth", "existingSecretPasswordKey": "password"}  # fmt: skip
    values = {"redis": {"enabled": False}, "externalRedis": external}
    rendered = render(helm, values)
    assert rendered.all("StatefulSet") == []
    assert rendered.all("Secret") == []
    env = env_of(worker(rendered))
    assert env["REDIS_URL"]["value"] == "rediss://redis.data.svc:6380/2"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "ext-auth", "key": "password"}
    assert "jobworker.github.io/redis-client" not in pod_labels(rendered)
    no_password = render(helm, {"redis": {"enabled": False}, "externalRedis": {"host": "10.0.0.5"}})
    assert "REDIS_PASSWORD" not in env_of(worker(no_password))
    assert env_of(worker(no_password))["REDIS_URL"]["value"] == "redis://10.0.0.5:6379/0"


def test_worker_pods_carry_the_label_the_redis_network_policy_admits(helm: Helm):
    rendered = render(helm)
    policy = rendered.get("NetworkPolicy", REDIS)
    admitted = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert admitted.items() <= pod_labels(rendered).items()
    test_pod = rendered.get("Pod", f"{JOB}-test-queue")
    assert admitted.items() <= test_pod["metadata"]["labels"].items()


# --- seeding ---------------------------------------------------------------------------------------
def test_items_are_seeded_by_every_worker_from_a_config_map(helm: Helm):
    rendered = render(helm, {"items": [*FRUITS, 42, "two\nlines"]})
    config_map = rendered.get("ConfigMap", f"{JOB}-items")
    assert json.loads(config_map["data"]["items.json"]) == [*FRUITS, 42, "two\nlines"]
    assert "initContainers" not in pod_spec(rendered), "the worker seeds in its own process"
    container = worker(rendered)
    assert values_of(container)["SEED_FILE"] == "/etc/jobworker/items/items.json"
    assert {"name": "items", "mountPath": "/etc/jobworker/items", "readOnly": True} in container[
        "volumeMounts"
    ]
    volumes = {v["name"]: v for v in pod_spec(rendered)["volumes"]}
    assert volumes["items"] == {"name": "items", "configMap": {"name": f"{JOB}-items"}}
    assert values_of(container)["WAIT_FOR_SEAL"] == "true"
    annotations = rendered.get("Job", JOB)["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/items"]) == 64


def test_items_file_is_seeded_verbatim_as_lines(helm: Helm, tmp_path: Path):
    items = tmp_path / "items.txt"
    items.write_text("apple\nbanana split\n\ncherry\n")
    rendered = helm.template(CHART, PROGRAM, set_file={"itemsFile": items})
    assert rendered.get("ConfigMap", f"{JOB}-items")["data"] == {
        "items.txt": "apple\nbanana split\n\ncherry\n"
    }
    assert values_of(worker(rendered))["SEED_FILE"] == "/etc/jobworker/items/items.txt"


def test_seeding_design_is_explained_in_the_template():
    """The choice of a seed in every worker is reasoned where it is made."""
    template = (CHART / "templates" / "job.yaml").read_text()
    assert "in its own process rather than in a\n        separate Job, hook or init container" in template
    assert "restartPolicy OnFailure" in template


def test_without_items_the_chart_leaves_the_queue_alone(helm: Helm):
    rendered = render(helm)
    assert rendered.all("ConfigMap") == [rendered.get("ConfigMap", REDIS)]
    assert "SEED_FILE" not in env_of(worker(rendered))
    assert {v["name"] for v in pod_spec(rendered)["volumes"]} == {"tmp"}
    assert [mount["name"] for mount in worker(rendered)["volumeMounts"]] == ["tmp"]


# --- pod failure policy ----------------------------------------------------------------------------
@pytest.mark.parametrize("kube_version", ["1.26.0", "1.29.4", "1.31.0", "1.35.0"])
def test_pod_failure_policy_where_the_cluster_has_it(helm: Helm, kube_version: str):
    policy = render(helm, kube_version=kube_version).get("Job", JOB)["spec"]["podFailurePolicy"]
    fail_job, ignore = policy["rules"]
    assert fail_job == {
        "action": "FailJob",
        "onExitCodes": {"containerName": "worker", "operator": "In",
                        "values": [ExitCode.USAGE, ExitCode.ITEMS_FAILED]},
    }  # fmt: skip
    assert ignore == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}


def test_pod_failure_policy_rules_follow_values(helm: Helm):
    values = {"podFailurePolicy": {"failJobExitCodes": [3], "ignoreDisruptions": False}}
    (rule,) = render(helm, values).get("Job", JOB)["spec"]["podFailurePolicy"]["rules"]
    assert rule["onExitCodes"]["values"] == [3]
    assert (
        "podFailurePolicy"
        not in render(helm, {"podFailurePolicy": {"enabled": False}}).get("Job", JOB)["spec"]
    )


def test_restart_policy_on_failure_with_pod_failure_policy_is_refused(helm: Helm):
    error = helm.template_error(CHART, {**PROGRAM, "restartPolicy": "OnFailure"})
    assert "restartPolicy OnFailure cannot be combined with podFailurePolicy.enabled" in error


# --- pods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("values_file", ci_values_files("fine-queue-job"), ids=lambda path: path.name)
def test_ci_variants_stay_restricted_and_keep_passwords_in_secrets(helm: Helm, values_file: Path):
    rendered = helm.template(CHART, values_files=[values_file])
    assert_restricted(rendered)
    assert_secrets_only_in_secrets(rendered)
    assert pod_spec(rendered)["automountServiceAccountToken"] is False
    for name, entry in env_of(worker(rendered)).items():
        assert "PASSWORD" not in name or "valueFrom" in entry, name


def test_helm_test_pod_checks_the_finished_queue(helm: Helm):
    pod = render(helm).get("Pod", f"{JOB}-test-queue")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][2]
    assert "jobworker status --json" in script
    assert '("pending", "in_flight", "failed")' in script


# --- NOTES.txt -------------------------------------------------------------------------------------
def test_notes_say_how_to_follow_the_job(helm: Helm):
    notes = helm.notes(CHART, {**PROGRAM, "items": FRUITS})
    assert f"kubectl wait --namespace batch --for=condition=complete --timeout=24h job/{JOB}" in notes
    assert f"kubectl exec --namespace batch job/{JOB} -c worker -- jobworker status" in notes
    assert f"kubectl port-forward --namespace batch svc/{REDIS} 6379:6379" in notes
    assert f"jobworker status --redis-url redis://127.0.0.1:6379/0 --queue {JOB}" in notes
    assert f"-l job-name={JOB} -c worker" in notes
    assert "Fill the queue" not in notes


def test_notes_say_how_to_fill_the_queue_by_hand(helm: Helm):
    notes = helm.notes(CHART, PROGRAM)
    assert f"kubectl exec --namespace batch {REDIS}-0 -- redis-cli rpush {JOB} apple banana cherry" in notes
    assert "--set suspend=true" in notes
    assert f"kubectl patch job --namespace batch {JOB}" in notes
    assert "jobworker seal" in notes
    waiting = helm.notes(CHART, {**PROGRAM, "waitForSeal": True})
    assert f"kubectl exec --namespace batch job/{JOB} -c worker -- jobworker seal" in waiting


def test_defaults_pass_the_schema_and_ask_only_for_the_program(helm: Helm):
    """There is no sensible default program: installing without one names what to set."""
    error = helm.template_error(CHART, {})
    assert "neither command nor handler is set" in error
    assert "schema" not in error, "the defaults of values.yaml must satisfy values.schema.json"
