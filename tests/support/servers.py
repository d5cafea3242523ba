"""Real servers on temporary ports and directories, stopped afterwards.

The tests never fake Redis or RabbitMQ: they start the Debian packages' own servers, each in a
directory of its own, on a port nobody else uses.
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
from collections.abc import Callable, Mapping
from pathlib import Path

import pika
import redis

START_TIMEOUT = 30.0


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


class RedisServer:
    """A redis-server process of our own; restartable on the same port and data directory."""

    def __init__(
        self,
        directory: Path,
        password: str | None = None,
        appendonly: bool = False,
        config: tuple[str, ...] = (),
    ) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (make system-deps)")
        self.directory = directory
        self.password = password
        self.appendonly = appendonly
        self.config = config
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The URL without the password: workers get it from REDIS_PASSWORD, as in the charts."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def start(self) -> "RedisServer":
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
            "--maxmemory-policy", "noeviction", *self.config,
        ]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Stop abruptly, as a crashed node would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "RedisServer":
        return self.start()

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
    """

    def __init__(self, config: Mapping[str, str] | None = None, advanced: str = "") -> None:
        if not Path(RABBITMQ_SERVER).exists():
            raise RuntimeError("rabbitmq-server is not installed (make system-deps)")
        self.node = f"jobworker-test-{secrets.token_hex(4)}@localhost"
        self.username = "jobworker-test"
        self.password = secrets.token_urlsafe(12)
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="rabbitmq-test-"))
        self.config = dict(config or {})
        self.advanced = advanced
        self.user = "rabbitmq" if os.geteuid() == 0 else None
        self.process: subprocess.Popen | None = None
        self.epmd: subprocess.Popen | None = None
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

    def _prepare(self) -> None:
        for sub in ("mnesia", "log", "home"):
            (self.directory / sub).mkdir()
        settings = {
            "listeners.tcp.default": f"127.0.0.1:{self.port}",
            "default_user": self.username,
            "default_pass": self.password,
            "log.console": "false",
            "log.file.level": "info",
            **self.config,
        }
        (self.directory / "rabbitmq.conf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.directory / "advanced.config").write_text(f"[{self.advanced}].\n" if self.advanced else "[].\n")
        (self.directory / "enabled_plugins").write_text("[].\n")
        if self.user:
            for path in [self.directory, *self.directory.rglob("*")]:
                shutil.chown(path, self.user, self.user)

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
            return False

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        """rabbitmqctl against this node (its cookie, node name and epmd), as the node's user."""
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
        text = ""
        for path in [*sorted((self.directory / "log").glob("*.log")), self.directory / "server.out"]:
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """A clean shutdown: SIGTERM (the script turns it into a node stop), SIGKILL if it hangs."""
        self._end(self.process, signal.SIGTERM, RABBIT_STOP_TIMEOUT)

    def kill(self) -> None:
        """Stop abruptly, as a crashed node would: unacknowledged messages stay on disk."""
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
