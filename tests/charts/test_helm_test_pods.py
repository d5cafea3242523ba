"""The brokers' `helm test` pods, run: each chart's rendered test command against a real server.

helm sees the broker's pod ready before the node may route its Service to it, so the test pod's
first connection can be refused on a real cluster. These run the command as the pod would, on a
port where nothing listens until the first refusal, when a relay to the real server opens there
(as the node's Service rules appear), and with a wrong password, which must fail at once.
"""

import contextlib
import os
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from devkit.servers import RabbitServer, RedisServer, free_port
from tests.charts.checks import env_of
from tests.support.helm import Helm, chart_path
from tests.support.manifests import Manifests

# The Service's name is the host the test pod connects to: here the server on loopback.
LOOPBACK = {"fullnameOverride": "localhost"}
RETRIED = "trying again"


def pod_command(helm: Helm, chart: str, port: int) -> tuple[list[str], dict]:
    """The command and environment of `chart`'s test pod for a Service on `port` of loopback."""
    rendered: Manifests = helm.template(chart_path(chart), {**LOOPBACK, "service": {"port": port}})
    container = rendered.get("Pod", "localhost-test-connection")["spec"]["containers"][0]
    return container["command"], env_of(container)


def start(command: list[str], env: Mapping[str, str]) -> subprocess.Popen:
    """The test pod's command, with only PATH and the pod's environment, its output merged."""
    return subprocess.Popen(
        command,
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run(command: list[str], env: Mapping[str, str]) -> tuple[int, str]:
    """Run the test pod's command to its end: exit code and merged output."""
    pod = start(command, env)
    output, _ = pod.communicate(timeout=60)
    return pod.returncode, output


def wait_for_the_first_refusal(pod: subprocess.Popen) -> str:
    """The pod's output up to the line saying it will try again (the test fails if it ends first)."""
    output = ""
    while RETRIED not in output:
        line = pod.stdout.readline()
        assert line, f"the test pod gave up at the first refused connection:\n{output}"
        output += line
    return output


class _Relay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def service_route(port: int, target: int) -> Iterator[None]:
    """Connections to `port` of loopback relayed to `target`, as a Service's rules relay them."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(("127.0.0.1", target)) as upstream:
                forward = threading.Thread(target=pump, args=(self.request, upstream), daemon=True)
                forward.start()
                pump(upstream, self.request)
                forward.join()

    relay = _Relay(("127.0.0.1", port), Handler)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        relay.shutdown()
        relay.server_close()


def pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


def test_redis_test_pod_waits_for_the_service_to_route_then_pings(helm4: Helm, tmp_path: Path):
    service_port = free_port()
    command, _ = pod_command(helm4, "redis", service_port)
    with RedisServer(tmp_path, password="test-password") as server:
        pod = start(command, {"REDISCLI_AUTH": "test-password"})
        try:
            first = wait_for_the_first_refusal(pod)
            assert "Connection refused" in first
            with service_route(service_port, server.port):
                output, _ = pod.communicate(timeout=60)
        finally:
            pod.kill()
    assert pod.returncode == 0, first + output
    assert output.splitlines()[-1] == "PING: PONG"


def test_redis_test_pod_fails_at_once_on_a_wrong_password(helm4: Helm, tmp_path: Path):
    with RedisServer(tmp_path, password="test-password") as server:
        command, _ = pod_command(helm4, "redis", server.port)
        code, output = run(command, {"REDISCLI_AUTH": "wrong"})
    assert code != 0
    assert RETRIED not in output
    assert "PING: " in output
    assert "PONG" not in output


def rabbit_env(command_env: dict, username: str, password: str) -> dict[str, str]:
    """The pod's AMQP_ADDRESS and virtual host as rendered, the Secret's user and password given."""
    return {
        "AMQP_ADDRESS": command_env["AMQP_ADDRESS"]["value"],
        "AMQP_VHOST": command_env["AMQP_VHOST"]["value"],
        "AMQP_USERNAME": username,
        "AMQP_PASSWORD": password,
    }


def test_rabbitmq_test_pod_waits_for_the_service_to_route_then_logs_in(
    helm4: Helm, rabbit_server: RabbitServer
):
    service_port = free_port()
    command, env = pod_command(helm4, "rabbitmq", service_port)
    pod = start(command, rabbit_env(env, rabbit_server.username, rabbit_server.password))
    try:
        first = wait_for_the_first_refusal(pod)
        with service_route(service_port, rabbit_server.port):
            output, _ = pod.communicate(timeout=60)
    finally:
        pod.kill()
    assert pod.returncode == 0, first + output
    assert output.splitlines()[-1].startswith(
        f"AMQP: {rabbit_server.username} logged in to localhost:{service_port}"
    )


def test_rabbitmq_test_pod_fails_at_once_on_a_wrong_password(helm4: Helm, rabbit_server: RabbitServer):
    command, env = pod_command(helm4, "rabbitmq", rabbit_server.port)
    code, output = run(command, rabbit_env(env, rabbit_server.username, "wrong"))
    assert code == 1
    assert RETRIED not in output
    assert f"did not let {rabbit_server.username} open virtual host /" in output
