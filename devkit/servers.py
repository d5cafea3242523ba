"""Real servers on temporary ports and directories, stopped afterwards.

The tests never fake Redis or RabbitMQ: they start the Debian packages' own servers, each in a
directory of its own, on a port nobody else uses; or, given an image, the same server from the
stand-in of its official image (`make cluster` builds them and lists them in the image map), as a
Docker container with its port published on 127.0.0.1 and its data in the same kind of directory.
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pika
import redis

from devkit.docker import DOCKER, Mount, docker_problem

REPO_ROOT = Path(__file__).resolve().parents[1]

START_TIMEOUT = 30.0
# "OFFICIAL STAND_IN" lines, written by `make cluster` (env IMAGE_MAP names another file).
IMAGE_MAP = REPO_ROOT / ".cluster" / "image-map"
REDIS_IMAGE = "docker.io/library/redis"  # the official repositories whose stand-ins tests run
RABBITMQ_IMAGE = "docker.io/library/rabbitmq"
CONTAINER_UID = 999  # the official images' user, which the stand-ins keep
DOCKER_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


class ImageUnavailable(Exception):
    """Why a server cannot run from its image on this machine, in one line (for a skip)."""


def standin_image(official: str) -> str:
    """The local stand-in for an official image repository (docker.io/library/redis), as the image
    map names it; ImageUnavailable when there is no map, no such line, no Docker engine, or the
    image is not in the engine. The map is read each time: `make cluster` rewrites it."""
    path = Path(os.environ.get("IMAGE_MAP") or IMAGE_MAP)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ImageUnavailable(
            f"no image map at {path} ({error.strerror}; `make cluster` writes it)"
        ) from None
    found = [
        fields[1]
        for fields in map(str.split, lines)
        if len(fields) == 2 and _repository(fields[0]) == official
    ]
    if not found:
        raise ImageUnavailable(f"the image map {path} names no stand-in for {official}")
    problem = docker_problem()
    if problem:
        raise ImageUnavailable(problem)
    inspected = subprocess.run(
        [DOCKER, "image", "inspect", "--format", "{{.Id}}", found[0]],
        capture_output=True,
        timeout=DOCKER_TIMEOUT,
        check=False,
    )
    if inspected.returncode != 0:
        raise ImageUnavailable(f"{found[0]} (the stand-in for {official}) is not in the local Docker engine")
    return found[0]


def _repository(reference: str) -> str:
    """docker.io/library/redis:8.2 -> docker.io/library/redis (a port's colon is not a tag's)."""
    name, _, tag = reference.rpartition(":")
    return name if name and "/" not in tag else reference


class Container:
    """A server run from an image: `docker run` as the image's uid 999 (or, not being root, as us),
    under a unique name, with its port published on 127.0.0.1 and host directories mounted for its
    configuration and data. A stopped container is removed; a restart is a new container of the same
    name, port and directories, so data on them survives it as it survives a restarted process.
    """

    def __init__(
        self,
        image: str,
        name: str,
        *,
        port: int,
        container_port: int,
        command: list[str],
        mounts: Sequence[Mount],
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.image = image
        self.name = name
        self.port = port
        self.container_port = container_port
        self.command = command
        self.mounts = list(mounts)
        self.environment = dict(environment or {})
        self.user = (
            f"{CONTAINER_UID}:{CONTAINER_UID}" if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"
        )

    def own(self, *directories: Path) -> None:
        """Give the container's user the directories it writes (as root; otherwise they are ours)."""
        if os.geteuid() == 0:
            for directory in directories:
                for path in [directory, *directory.rglob("*")]:
                    os.chown(path, CONTAINER_UID, CONTAINER_UID)

    def run(self) -> None:
        argv = [DOCKER, "run", "--detach", "--init", "--name", self.name, "--user", self.user]
        argv += ["--publish", f"127.0.0.1:{self.port}:{self.container_port}"]
        for mount in self.mounts:
            argv += ["--mount", mount.option()]
        for variable, value in self.environment.items():
            argv += ["--env", f"{variable}={value}"]
        result = subprocess.run(
            [*argv, self.image, *self.command],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"docker run {self.image} exited {result.returncode}: {result.stderr.strip()}")

    def running(self) -> bool:
        result = subprocess.run(
            [DOCKER, "inspect", "--format", "{{.State.Running}}", self.name],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT,
            check=False,
        )
        return result.stdout.strip() == "true"

    def logs(self, lines: int = 20) -> str:
        result = subprocess.run(
            [DOCKER, "logs", "--tail", str(lines), self.name],
            capture_output=True,
            text=True,
            timeout=DOCKER_TIMEOUT,
            check=False,
        )
        return (result.stdout + result.stderr).strip()

    def exec(self, *argv: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            [DOCKER, "exec", self.name, *argv], capture_output=True, text=True, timeout=timeout, check=False
        )

    def stop(self, timeout: float) -> None:
        """A clean shutdown (SIGTERM, SIGKILL after `timeout`), then the container is removed."""
        subprocess.run(
            [DOCKER, "stop", "--time", str(round(timeout)), self.name],
            capture_output=True,
            timeout=timeout + DOCKER_TIMEOUT,
            check=False,
        )
        self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crashed server, and the container removed (`docker rm --force`)."""
        subprocess.run(
            [DOCKER, "rm", "--force", self.name], capture_output=True, timeout=DOCKER_TIMEOUT, check=False
        )


class RedisServer:
    """A redis-server process of our own, or a container of `image`; restartable on the same port
    and data directory."""

    def __init__(
        self,
        directory: Path,
        password: str | None = None,
        appendonly: bool = False,
        config: tuple[str, ...] = (),
        image: str | None = None,
    ) -> None:
        if image is None and shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (make system-deps)")
        self.directory = directory
        self.password = password
        self.appendonly = appendonly
        self.config = config
        self.image = image
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.container: Container | None = None
        if image:
            # It listens on every interface of its container (published ports reach it from the
            # bridge, not from loopback, so protected mode would refuse a server without a password);
            # only 127.0.0.1 reaches it from outside.
            command = ["redis-server", "--port", "6379", "--protected-mode", "no", "--dir", "/data"]
            self.container = Container(
                image,
                f"jobworker-test-redis-{secrets.token_hex(4)}",
                port=self.port,
                container_port=6379,
                command=[*command, *self._settings()],
                mounts=[Mount(directory, "/data", read_only=False)],
            )

    @property
    def url(self) -> str:
        """The URL without the password: workers get it from REDIS_PASSWORD, as in the charts."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def _settings(self) -> list[str]:
        settings = [
            "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
            "--maxmemory-policy", "noeviction", *self.config,
        ]  # fmt: skip
        return [*settings, "--requirepass", self.password] if self.password else settings

    def start(self) -> "RedisServer":
        if self.container:
            self.container.own(self.directory)
            self.container.run()
        else:
            command = [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            ]  # fmt: skip
            self.process = subprocess.Popen(
                [*command, *self._settings()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        wait_until(self._answers, START_TIMEOUT, f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.BusyLoadingError:
            return False
        except redis.ConnectionError:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}") from None
            if self.container and not self.container.running():
                raise RuntimeError(
                    f"container {self.container.name} exited: {self.container.logs()}"
                ) from None
            return False

    def stop(self) -> None:
        if self.container:
            self.container.stop(10)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Stop abruptly, as a crashed node would."""
        if self.container:
            self.container.kill()
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "RedisServer":
        try:
            return self.start()
        except BaseException:
            self.kill()
            raise

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()


RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # /usr/sbin's wrapper would su and log elsewhere
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
RABBIT_START_TIMEOUT = 120.0  # a first boot initialises its database: several seconds on a busy machine
RABBIT_STOP_TIMEOUT = 30.0


class RabbitServer:
    """A rabbitmq-server node of our own, restartable on the same ports and data.

    Everything is temporary and private: the node name, the AMQP, distribution and epmd ports, and
    a directory holding the database, logs, configuration and Erlang cookie ($HOME). Its epmd runs
    in the foreground on its own port (ERL_EPMD_PORT, and `-start_epmd false` so that the node never
    starts a daemon of its own), so it meets no other node and ends with its process group. The
    node creates the user of rabbitmq.conf's default_user at first boot: the tests never use guest.
    Run as root, the node runs as the `rabbitmq` user (as the Debian wrapper does), in a directory
    that user owns. kill() is a crash (SIGKILL); stop() is a clean shutdown.

    Given an image, the node is a container of it instead (see Container), as the rabbitmq chart
    runs it: the directory's etc/ is its /etc/rabbitmq, its home/ the /var/lib/rabbitmq that holds
    the cookie and the database, it logs to the console (`docker logs`), and rabbitmqctl runs in it.
    """

    def __init__(
        self, config: Mapping[str, str] | None = None, advanced: str = "", image: str | None = None
    ) -> None:
        if image is None and not Path(RABBITMQ_SERVER).exists():
            raise RuntimeError("rabbitmq-server is not installed (make system-deps)")
        self.image = image
        self.node = "rabbit@localhost" if image else f"jobworker-test-{secrets.token_hex(4)}@localhost"
        self.username = "jobworker-test"
        self.password = secrets.token_urlsafe(12)
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rabbitmq-test-"))
        self.config = dict(config or {})
        self.advanced = advanced
        self.user = "rabbitmq" if os.geteuid() == 0 and not image else None
        self.process: subprocess.Popen | None = None
        self.epmd: subprocess.Popen | None = None
        self.container: Container | None = None
        self._prepare()

    @property
    def url(self) -> str:
        """The URL without credentials: workers get them from AMQP_USERNAME/PASSWORD, as in the charts."""
        return f"amqp://127.0.0.1:{self.port}/%2F"

    @property
    def url_with_credentials(self) -> str:
        return f"amqp://{self.username}:{self.password}@127.0.0.1:{self.port}/%2F"

    def env(self) -> dict[str, str]:
        return {"AMQP_URL": self.url, "AMQP_USERNAME": self.username, "AMQP_PASSWORD": self.password}

    def connection(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.url_with_credentials))

    def version(self) -> tuple[int, ...]:
        """The broker's version, e.g. (3, 10, 8), from the server properties of a connection."""
        connection = self.connection()
        try:
            version = connection._impl.server_properties["version"]
        finally:
            connection.close()
        text = version.decode() if isinstance(version, bytes) else str(version)
        return tuple(int(part) for part in text.split("+")[0].split("-")[0].split("."))

    def _prepare(self) -> None:
        settings = {"default_user": self.username, "default_pass": self.password}
        if self.image:
            config_dir = self.directory / "etc"
            for sub in ("etc", "home"):
                (self.directory / sub).mkdir()
            settings["listeners.tcp.default"] = "5672"
        else:
            config_dir = self.directory
            for sub in ("mnesia", "log", "home"):
                (self.directory / sub).mkdir()
            settings |= {
                "listeners.tcp.default": f"127.0.0.1:{self.port}",
                "log.console": "false",
                "log.file.level": "info",
            }
        settings |= self.config
        (config_dir / "rabbitmq.conf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        (config_dir / "advanced.config").write_text(f"[{self.advanced}].\n" if self.advanced else "[].\n")
        (config_dir / "enabled_plugins").write_text("[].\n")
        if self.user:
            for path in [self.directory, *self.directory.rglob("*")]:
                shutil.chown(path, self.user, self.user)
        if self.image:
            # Set as the rabbitmq chart sets it; the start script then execs the Erlang VM, which
            # stops cleanly on the SIGTERM of `docker stop`.
            environment = {
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_CONFIG_FILE": "/etc/rabbitmq/rabbitmq.conf",
                "RABBITMQ_ADVANCED_CONFIG_FILE": "/etc/rabbitmq/advanced.config",
                "RABBITMQ_ENABLED_PLUGINS_FILE": "/etc/rabbitmq/enabled_plugins",
                "RUNNING_UNDER_SYSTEMD": "true",
            }
            self.container = Container(
                self.image,
                f"jobworker-test-rabbitmq-{secrets.token_hex(4)}",
                port=self.port,
                container_port=5672,
                command=["rabbitmq-server"],
                mounts=[
                    Mount(config_dir, "/etc/rabbitmq"),
                    Mount(self.directory / "home", "/var/lib/rabbitmq", read_only=False),
                ],
                environment=environment,
            )
            self.container.own(self.directory)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        base = str(self.directory)
        env.update(
            HOME=f"{base}/home",
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_PORT=str(self.epmd_port),
            RABBITMQ_MNESIA_BASE=f"{base}/mnesia",
            RABBITMQ_LOG_BASE=f"{base}/log",
            RABBITMQ_CONFIG_FILE=f"{base}/rabbitmq.conf",
            RABBITMQ_ADVANCED_CONFIG_FILE=f"{base}/advanced.config",
            RABBITMQ_ENABLED_PLUGINS_FILE=f"{base}/enabled_plugins",
            RABBITMQ_CONF_ENV_FILE=f"{base}/no-rabbitmq-env.conf",
            RABBITMQ_PID_FILE=f"{base}/rabbitmq.pid",
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-start_epmd false",
        )
        return env

    def _spawn(self, argv: list[str], output: Path) -> subprocess.Popen:
        as_user = {"user": self.user, "group": self.user, "extra_groups": []} if self.user else {}
        with output.open("ab") as log:
            return subprocess.Popen(
                argv,
                cwd=self.directory,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **as_user,
            )

    def start(self) -> "RabbitServer":
        if self.container:
            self.container.run()
            wait_until(self._answers, RABBIT_START_TIMEOUT, f"rabbitmq-server in {self.container.name}", 0.2)
            return self
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = self._spawn(
                ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"], self.directory / "epmd.out"
            )
            wait_until(self._epmd_listens, START_TIMEOUT, f"epmd on port {self.epmd_port}")
        self.process = self._spawn([RABBITMQ_SERVER], self.directory / "server.out")
        wait_until(self._answers, RABBIT_START_TIMEOUT, f"rabbitmq-server {self.node}", interval=0.2)
        return self

    def _epmd_listens(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.epmd_port)) == 0

    def _answers(self) -> bool:
        try:
            self.connection().close()
            return True
        except (pika.exceptions.AMQPError, OSError):
            if self.process and self.process.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq-server exited with {self.process.returncode}: {self.log_tail()}"
                ) from None
            if self.container and not self.container.running():
                raise RuntimeError(f"container {self.container.name} exited: {self.log_tail()}") from None
            return False

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        """rabbitmqctl against this node (its cookie, node name and epmd), as the node's user; in
        the node's container when it has one."""
        if self.container:
            result = self.container.exec(
                "rabbitmqctl", "--node", self.node, *args, timeout=RABBIT_STOP_TIMEOUT
            )
        else:
            as_user = {"user": self.user, "group": self.user, "extra_groups": []} if self.user else {}
            result = subprocess.run(
                [RABBITMQCTL, "--node", self.node, *args],
                cwd=self.directory,
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=RABBIT_STOP_TIMEOUT,
                check=False,
                **as_user,
            )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {args[0]} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def add_user(self, username: str, password: str, vhost: str = "/") -> None:
        """Create (or give a new password to) a user with every permission on `vhost`: the user a
        chart's Secret names, so that rendered pods log in as they would on the chart's broker."""
        existing = self.ctl("list_users", "--quiet", "--no-table-headers").stdout.split()
        if username in existing:
            self.ctl("change_password", username, password)
        else:
            self.ctl("add_user", username, password)
        self.ctl("set_permissions", "--vhost", vhost, username, ".*", ".*", ".*")

    def log_tail(self, lines: int = 20) -> str:
        if self.container:
            return self.container.logs(lines)
        text = ""
        for path in [*sorted((self.directory / "log").glob("*.log")), self.directory / "server.out"]:
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """A clean shutdown: SIGTERM (the script turns it into a node stop), SIGKILL if it hangs."""
        if self.container:
            self.container.stop(RABBIT_STOP_TIMEOUT)
        self._end(self.process, signal.SIGTERM, RABBIT_STOP_TIMEOUT)

    def kill(self) -> None:
        """Stop abruptly, as a crashed node would: unacknowledged messages stay on disk."""
        if self.container:
            self.container.kill()
        self._end(self.process, signal.SIGKILL, RABBIT_STOP_TIMEOUT)

    @staticmethod
    def _end(process: subprocess.Popen | None, how: signal.Signals, timeout: float) -> None:
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, how)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):  # the node's children (erl_child_setup, ...)
            os.killpg(process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop the node and its epmd, and remove the directory."""
        try:
            self.stop()
        finally:
            self._end(self.epmd, signal.SIGKILL, RABBIT_STOP_TIMEOUT)
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "RabbitServer":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.close()
