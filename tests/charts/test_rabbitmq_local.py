"""The rabbitmq chart's rendered node, run as a local process of Debian's rabbitmq-server.

The container's command and environment come from `helm template` (the user, password and Erlang
cookie from the rendered Secret, rabbitmq.conf and enabled_plugins from the rendered ConfigMap, the
data, home and log directories from its volumes), so the chart's configuration is checked by a real
node: it boots, creates the Secret's user and no guest, its probes pass, and the `helm test` pod's
AMQP login succeeds with the right password and fails with a wrong one.

The machine is not the pod: the Debian package's RabbitMQ is older than the image's (the settings
the chart writes exist in both), and the few things the pod has to itself are moved aside here,
where other nodes may run: the AMQP port is chosen free at render time (service.port), epmd and the
Erlang distribution get free ports, and epmd runs in the foreground so that it ends with the test.
"""

import base64
import contextlib
import copy
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest

from tests.support.helm import Helm, chart_path, ci_values_files
from tests.support.rendered import LocalContainer, LocalPod, Manifests
from tests.support.servers import RABBIT_START_TIMEOUT, RABBITMQ_SERVER, free_port, wait_until

CHART = chart_path("rabbitmq")
RELEASE = "demo"
FULLNAME = "demo-rabbitmq"
RABBITMQ_BIN = Path(RABBITMQ_SERVER).parent
PROGRAMS = {
    name: [str(RABBITMQ_BIN / name)] for name in ("rabbitmq-server", "rabbitmq-diagnostics", "rabbitmqctl")
}
USER = "rabbitmq" if os.geteuid() == 0 else None  # as root, run as the package's user, like the pod


@dataclass
class LocalNode:
    """The StatefulSet's pod, its rabbitmq container running as a local node."""

    manifests: Manifests
    pod: LocalPod
    port: int
    process: subprocess.Popen | None = None
    epmd: subprocess.Popen | None = None

    @property
    def container(self) -> LocalContainer:
        return self.pod.container("rabbitmq")

    @property
    def credentials(self) -> tuple[str, str]:
        data = self.manifests.secret_data(FULLNAME)
        return data["rabbitmq-username"], data["rabbitmq-password"]

    def login(self, username: str, password: str) -> pika.BlockingConnection:
        return pika.BlockingConnection(
            pika.ConnectionParameters("127.0.0.1", self.port, "/", pika.PlainCredentials(username, password))
        )

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """A command in the container (probes, the CLI tools), with its environment."""
        program = PROGRAMS.get(argv[0], [argv[0]])
        return subprocess.run([*program, *argv[1:]], env=env or self.container.env, capture_output=True,
                              text=True, timeout=60, check=False, **_as_user())  # fmt: skip

    def start(self) -> None:
        env = self.container.env
        epmd_port = free_port()
        # The machine's ports, not the pod's: epmd and the distribution move aside (see the module doc).
        env.update(ERL_EPMD_PORT=str(epmd_port), RABBITMQ_DIST_PORT=str(free_port()))
        env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] += " -start_epmd false"
        env["RABBITMQ_CONF_ENV_FILE"] = str(self.pod.directory / "no-rabbitmq-env.conf")
        if USER:
            for path in [self.pod.directory, *self.pod.directory.rglob("*")]:
                shutil.chown(path, USER, USER)
        log = (self.pod.directory / "server.out").open("ab")
        with log:
            self.epmd = subprocess.Popen(["epmd", "-port", str(epmd_port), "-address", "127.0.0.1"],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         **_as_user())  # fmt: skip
            self.process = self.container.start(stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                **_as_user())  # fmt: skip
        wait_until(
            self._answers, RABBIT_START_TIMEOUT, f"the rendered node on port {self.port}", interval=0.2
        )

    def _answers(self) -> bool:
        try:
            self.login(*self.credentials).close()
            return True
        except (pika.exceptions.AMQPError, OSError):
            if self.process and self.process.poll() is not None:
                tail = (self.pod.directory / "server.out").read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"the rendered node exited with {self.process.returncode}:\n{tail}"
                ) from None
            return False

    def stop(self) -> None:
        for process in (self.process, self.epmd):
            if process is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with contextlib.suppress(ProcessLookupError):  # the node's children (erl_child_setup, ...)
                os.killpg(process.pid, signal.SIGKILL)


def _as_user() -> dict:
    return {"user": USER, "group": USER, "extra_groups": []} if USER else {}


@contextlib.contextmanager
def local_node(helm: Helm, values: dict, values_files: list[Path] = ()) -> Iterator[LocalNode]:
    """A node of the rendered chart, in a directory of its own that the node's user can reach
    (pytest's temporary directories are private to root)."""
    port = free_port()
    manifests = helm.template(CHART, {**values, "service": {"port": port}}, values_files=values_files)
    directory = Path(tempfile.mkdtemp(prefix="rabbitmq-pod-"))
    node = LocalNode(
        manifests, LocalPod(manifests, manifests.get("StatefulSet"), directory, programs=PROGRAMS), port
    )
    try:
        node.start()
        yield node
    finally:
        node.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def node(helm4: Helm) -> Iterator[LocalNode]:
    with local_node(helm4, {}) as running:
        yield running


def test_the_node_has_the_secret_s_user_and_no_guest(node: LocalNode):
    username, password = node.credentials
    connection = node.login(username, password)
    try:
        channel = connection.channel()
        channel.queue_declare("chart-user-may-declare", durable=True)
        channel.queue_delete("chart-user-may-declare")
    finally:
        connection.close()
    for wrong in (("guest", "guest"), (username, "not-the-password")):
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            node.login(*wrong)
    users = node.run(["rabbitmqctl", "--quiet", "list_users", "--no-table-headers"])
    assert users.returncode == 0, users.stderr
    assert [line.split()[0] for line in users.stdout.splitlines()] == [username], "guest never exists"


def test_the_node_runs_the_rendered_configuration(node: LocalNode):
    environment = node.run(["rabbitmq-diagnostics", "--quiet", "environment"])
    assert environment.returncode == 0, environment.stderr
    assert "{consumer_timeout,1800000}" in environment.stdout
    assert "{total_memory_available_override_value,1073741824}" in environment.stdout
    assert '{loopback_users,[<<"guest">>]}' in environment.stdout
    listeners = node.run(["rabbitmq-diagnostics", "--quiet", "listeners"])
    assert listeners.returncode == 0, listeners.stderr
    lines = {
        line.split("protocol: ")[-1].split(",")[0]: line
        for line in listeners.stdout.splitlines()
        if "port:" in line
    }
    assert "Interface: 127.0.0.1" in lines["clustering"], "the Erlang distribution is on loopback only"
    assert f"port: {node.port}" in lines["amqp"]
    data = Path(node.container.env["RABBITMQ_MNESIA_BASE"])
    assert (data / "rabbit@localhost").is_dir(), "the data directory is named after the fixed node name"


@pytest.mark.parametrize("probe", ["startupProbe", "livenessProbe", "readinessProbe"])
def test_probes_pass_with_the_container_s_environment(node: LocalNode, probe: str):
    (container,) = node.manifests.get("StatefulSet")["spec"]["template"]["spec"]["containers"]
    result = node.run(container[probe]["exec"]["command"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_probes_fail_without_the_cookie(node: LocalNode):
    """The probes pass because the Secret's cookie reaches the CLI tools, not by chance."""
    env = {**node.container.env, "RABBITMQ_ERLANG_COOKIE": "NOT-THE-COOKIE"}
    result = node.run(["rabbitmq-diagnostics", "--quiet", "--timeout", "5", "ping"], env=env)
    assert result.returncode != 0


def test_helm_test_pod_logs_in_over_amqp(node: LocalNode, tmp_path: Path):
    addresses = {FULLNAME: f"127.0.0.1:{node.port}"}
    manifests = node.manifests
    pod = LocalPod(
        manifests, manifests.get("Pod", f"{FULLNAME}-test-connection"), tmp_path / "ok", addresses=addresses
    )
    result = pod.container("login").run(60)
    assert result.returncode == 0, result.stderr.decode()
    assert b"opened virtual host /" in result.stdout
    wrong = Manifests(copy.deepcopy(manifests.objects))
    wrong.get("Secret", FULLNAME)["data"]["rabbitmq-password"] = base64.b64encode(
        b"not-the-password"
    ).decode()
    pod = LocalPod(
        wrong, wrong.get("Pod", f"{FULLNAME}-test-connection"), tmp_path / "wrong", addresses=addresses
    )
    result = pod.container("login").run(60)
    assert result.returncode == 1
    assert b"did not let" in result.stderr


def test_a_ci_variant_with_extra_settings_and_management_boots(helm4: Helm):
    """resources-values.yaml's extra rabbitmq.conf lines, and the management plugin on its port."""
    (values_file,) = [path for path in ci_values_files("rabbitmq") if path.name == "resources-values.yaml"]
    values = {"management": {"enabled": True, "port": free_port()}}
    with local_node(helm4, values, [values_file]) as running:
        listeners = running.run(["rabbitmq-diagnostics", "--quiet", "listeners"])
        assert listeners.returncode == 0, listeners.stderr
        assert f"port: {values['management']['port']}, protocol: http" in listeners.stdout
        environment = running.run(["rabbitmq-diagnostics", "--quiet", "environment"])
        assert "{consumer_timeout,7200000}" in environment.stdout
        assert "{heartbeat,30}" in environment.stdout
