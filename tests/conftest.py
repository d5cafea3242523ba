"""Fixtures shared by the test modules: real servers, each test with its own."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.images import BuiltImages, build_images, docker_problem
from tests.support.servers import RabbitServer, RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A password-protected redis-server with the append-only file on, for one test."""
    server = RedisServer(tmp_path / "redis", password="test-password", appendonly=True)
    server.directory.mkdir()
    with server:
        yield server


@pytest.fixture
def redis_env(redis_server: RedisServer) -> dict[str, str]:
    """The environment a chart gives a worker for `redis_server`."""
    return {"REDIS_URL": redis_server.url, "REDIS_PASSWORD": redis_server.password or ""}


@pytest.fixture(scope="session")
def built_images() -> BuiltImages:
    """The worker images, built once per session by `make images` on $PYTHON_IMAGE.

    Skipped only when no Docker engine answers; a failing build fails the tests that need it.
    """
    problem = docker_problem()
    if problem:
        pytest.skip(f"{problem} (bash .ci/run starts one)")
    return build_images()


@pytest.fixture(scope="session")
def rabbit_server() -> Iterator[RabbitServer]:
    """One rabbitmq-server node for the session (a node takes seconds to start); tests that share
    it keep apart by queue name (`amqp_queue`). Tests that restart or reconfigure the broker start
    a RabbitServer of their own."""
    with RabbitServer() as server:
        yield server


@pytest.fixture
def amqp_env(rabbit_server: RabbitServer) -> dict[str, str]:
    """The environment a chart gives a worker for `rabbit_server`: URL, user and password."""
    return rabbit_server.env()


@pytest.fixture
def amqp_queue(request: pytest.FixtureRequest) -> str:
    """A queue name no other test uses (the broker is shared by the session)."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"{name}-{uuid.uuid4().hex[:8]}"
