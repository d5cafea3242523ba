"""The fine-queue-job chart's rendered objects, field by field, with Helm 3 and Helm 4."""

import json
from pathlib import Path

import pytest

from jobworker import constants
from jobworker.constants import ExitCode
from tests.charts.checks import assert_restricted, assert_secrets_only_in_secrets, env_of
from tests.support.helm import Helm, chart_defaults, chart_path, ci_values_files
from tests.support.manifests import Manifests

CHART = chart_path("fine-queue-job")
JOB = "demo-fine-queue-job"  # release "demo"
REDIS = "demo-redis"
FRUITS = ["apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon", "orange", "pickle"]
PROGRAM = {"command": ["echo", "processing", "{item}"]}
# Every variable the jobworker CLI reads, by its name in constants.py.
JOBWORKER_VARIABLES = {value for name, value in vars(constants).items() if name.startswith("ENV_")}


def render(helm: Helm, values: dict | None = None, **kwargs: object) -> Manifests:
    return helm.template(CHART, {**PROGRAM, **(values or {})}, **kwargs)


def pod_spec(manifests: Manifests) -> dict:
    return manifests.get("Job")["spec"]["template"]["spec"]


def worker(manifests: Manifests) -> dict:
    (container,) = pod_spec(manifests)["containers"]
    assert container["name"] == "worker"
    return container


def values_of(container: dict) -> dict[str, str]:
    return {name: entry["value"] for name, entry in env_of(container).items() if "value" in entry}


# --- the Job ---------------------------------------------------------------------------------------
def test_job_defaults_are_a_work_queue_of_two_workers(helm: Helm):
    job = render(helm).get("Job", JOB)
    spec = job["spec"]
    assert spec["parallelism"] == 2
    assert "completions" not in spec
    assert spec["backoffLimit"] == 6
    assert spec["suspend"] is False
    assert "activeDeadlineSeconds" not in spec
    assert "ttlSecondsAfterFinished" not in spec
    assert "selector" not in spec, "Kubernetes generates the Job's selector"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"


def test_job_settings_come_from_values(helm: Helm):
    values = {"parallelism": 5, "completions": 8, "backoffLimit": 1, "activeDeadlineSeconds": 3600,
              "ttlSecondsAfterFinished": 300, "suspend": True, "terminationGracePeriodSeconds": 90,
              "graceSeconds": 60}  # fmt: skip
    spec = render(helm, values).get("Job", JOB)["spec"]
    assert spec["parallelism"] == 5
    assert spec["completions"] == 8
    assert spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["ttlSecondsAfterFinished"] == 300
    assert spec["suspend"] is True
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 90
    assert values_of(spec["template"]["spec"]["containers"][0])["GRACE_SECONDS"] == "60"


def test_worker_runs_the_image_entrypoint_with_the_program_as_args(helm: Helm):
    container = worker(render(helm, {"command": ["python", "/app/run.py"], "args": ["--out", "{item}"]}))
    assert container["image"] == "ghcr.io/jobworker/fine-queue-worker:0.1.0"
    assert "command" not in container, "the image's ENTRYPOINT (jobworker fine) must stay"
    assert container["args"] == ["--", "python", "/app/run.py", "--out", "{item}"]


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


def test_queue_name_defaults_to_the_release_full_name(helm: Helm):
    assert values_of(worker(render(helm)))["QUEUE_NAME"] == JOB
    other = helm.template(CHART, PROGRAM, release="nightly")
    assert values_of(worker(other))["QUEUE_NAME"] == "nightly-fine-queue-job"
    assert values_of(worker(render(helm, {"queueName": "job2"})))["QUEUE_NAME"] == "job2"


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
    labels = pod_spec_labels(rendered)
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
    assert "jobworker.github.io/redis-client" not in pod_spec_labels(rendered)
    no_password = render(helm, {"redis": {"enabled": False}, "externalRedis": {"host": "10.0.0.5"}})
    assert "REDIS_PASSWORD" not in env_of(worker(no_password))
    assert env_of(worker(no_password))["REDIS_URL"]["value"] == "redis://10.0.0.5:6379/0"


def pod_spec_labels(manifests: Manifests) -> dict[str, str]:
    return manifests.get("Job", JOB)["spec"]["template"]["metadata"]["labels"]


def test_worker_pods_carry_the_label_the_redis_network_policy_admits(helm: Helm):
    rendered = render(helm)
    policy = rendered.get("NetworkPolicy", REDIS)
    admitted = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert admitted.items() <= pod_spec_labels(rendered).items()
    test_pod = rendered.get("Pod", f"{JOB}-test-queue")
    assert admitted.items() <= test_pod["metadata"]["labels"].items()


def test_pod_labels_and_annotations_are_added_without_duplicate_keys(helm: Helm):
    values = {"podLabels": {"team": "batch", "app.kubernetes.io/name": "mine"}, "podAnnotations": {"a": "b"}}
    rendered = render(helm, values)
    labels = pod_spec_labels(rendered)
    assert labels["team"] == "batch"
    assert labels["app.kubernetes.io/name"] == "fine-queue-job", "the chart's own labels win"
    assert labels["app.kubernetes.io/component"] == "worker"
    assert rendered.get("Job", JOB)["spec"]["template"]["metadata"]["annotations"]["a"] == "b"


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


def test_other_items_change_the_pod_template(helm: Helm):
    """So that `helm upgrade` with other items fails (a Job's template is immutable)."""
    first = render(helm, {"items": ["a", "b"]}).get("Job", JOB)["spec"]["template"]
    second = render(helm, {"items": ["a", "c"]}).get("Job", JOB)["spec"]["template"]
    assert first["metadata"]["annotations"] != second["metadata"]["annotations"]


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


def test_no_pod_failure_policy_on_a_cluster_without_it(helm: Helm):
    """Kubernetes 1.25 is supported (kubeVersion >=1.25.0-0) but has the field only as alpha."""
    spec = render(helm, kube_version="1.25.16").get("Job", JOB)["spec"]
    assert "podFailurePolicy" not in spec
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_pod_failure_policy_rules_follow_values(helm: Helm):
    values = {"podFailurePolicy": {"failJobExitCodes": [3], "ignoreDisruptions": False}}
    (rule,) = render(helm, values).get("Job", JOB)["spec"]["podFailurePolicy"]["rules"]
    assert rule["onExitCodes"]["values"] == [3]
    assert (
        "podFailurePolicy"
        not in render(helm, {"podFailurePolicy": {"enabled": False}}).get("Job", JOB)["spec"]
    )


def test_restart_policy_on_failure_renders_without_pod_failure_policy(helm: Helm):
    values = {"restartPolicy": "OnFailure", "podFailurePolicy": {"enabled": False}}
    spec = render(helm, values).get("Job", JOB)["spec"]
    assert spec["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert "podFailurePolicy" not in spec


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


def test_pods_have_resource_requests_and_limits_by_default(helm: Helm):
    rendered = render(helm, {"items": ["a"]})
    test_pod = rendered.get("Pod", f"{JOB}-test-queue")["spec"]["containers"][0]
    for container in (worker(rendered), test_pod):
        resources = container["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}, container["name"]
        assert set(resources["limits"]) == {"cpu", "memory"}, container["name"]


def test_network_policy_admits_nothing_to_the_release_pods(helm: Helm):
    rendered = render(helm)
    policy = rendered.get("NetworkPolicy", JOB)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in policy["spec"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod_spec_labels(rendered).items()
    assert selector.items() <= rendered.get("Pod", f"{JOB}-test-queue")["metadata"]["labels"].items()
    assert rendered.find("NetworkPolicy", JOB) is not None
    assert render(helm, {"networkPolicy": {"enabled": False}}).find("NetworkPolicy", JOB) is None


def test_pod_runs_as_the_image_user_with_a_writable_tmp(helm: Helm):
    rendered = render(helm, {"items": ["a"]})
    spec = pod_spec(rendered)
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["enableServiceLinks"] is False
    assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
    container = worker(rendered)
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_pod_extras_reach_the_worker(helm: Helm):
    values = {
        "env": [{"name": "OUTPUT", "value": "/out"}],
        "envFrom": [{"secretRef": {"name": "api-token"}}],
        "extraVolumes": [{"name": "out", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "out", "mountPath": "/out"}],
        "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi", "cpu": None}},
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "spot", "operator": "Exists"}],
        "affinity": {"podAntiAffinity": {}},
        "imagePullSecrets": [{"name": "registry"}],
        "priorityClassName": "batch-low",
        "items": ["a"],
    }
    rendered = render(helm, values)
    spec = pod_spec(rendered)
    container = worker(rendered)
    assert env_of(container)["OUTPUT"] == {"name": "OUTPUT", "value": "/out"}
    assert container["envFrom"] == values["envFrom"]
    assert {"name": "out", "mountPath": "/out"} in container["volumeMounts"]
    assert {"name": "out", "emptyDir": {}} in spec["volumes"]
    # Given values are merged into the defaults; null drops a default (here the CPU limit).
    defaults = chart_defaults(CHART.name)
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": defaults["resources"]["requests"]["memory"]},
        "limits": {"memory": "1Gi"},
    }
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == values["tolerations"]
    assert spec["affinity"] == values["affinity"]
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["priorityClassName"] == "batch-low"


def test_service_account(helm: Helm):
    assert pod_spec(render(helm))["serviceAccountName"] == "default"
    rendered = render(helm, {"serviceAccount": {"create": True, "annotations": {"iam": "role"}}})
    account = rendered.get("ServiceAccount", JOB)
    assert account["automountServiceAccountToken"] is False
    assert account["metadata"]["annotations"] == {"iam": "role"}
    assert pod_spec(rendered)["serviceAccountName"] == JOB
    named = render(helm, {"serviceAccount": {"name": "existing"}})
    assert pod_spec(named)["serviceAccountName"] == "existing"
    assert named.all("ServiceAccount") == []


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


def test_notes_warn_when_the_cluster_has_no_pod_failure_policy(helm: Helm):
    assert "has no pod failure policy" in helm.notes(CHART, PROGRAM, kube_version="1.25.3")
    assert "has no pod failure policy" not in helm.notes(CHART, PROGRAM)


def test_defaults_pass_the_schema_and_ask_only_for_the_program(helm: Helm):
    """There is no sensible default program: installing without one names what to set."""
    error = helm.template_error(CHART, {})
    assert "neither command nor handler is set" in error
    assert "schema" not in error, "the defaults of values.yaml must satisfy values.schema.json"
