"""Fixtures shared by the test modules: real servers, each test with its own.

The servers are Debian 12's redis-server and rabbitmq-server, run as local processes. In a module
marked `broker_versions`, every test that uses one runs twice: on Debian's server and on the
stand-in for the official image the charts default to (a Docker container); that variant skips, in
one line saying why, where there is no image map or no Docker engine, unless REQUIRE_CLUSTER=1
(CI, after `make cluster`), which makes it fail instead.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.docker import docker_problem
from devkit.servers import (
    RABBITMQ_IMAGE,
    REDIS_IMAGE,
    ImageUnavailable,
    RabbitServer,
    RedisServer,
    standin_image,
)
from tests.support.images import BuiltImages, build_images

# The values are the official image repositories (None: Debian's local server, the default). A
# test outside `broker_versions` modules gets None too, so it shares the Debian servers' fixtures.
REDIS_VERSIONS = [pytest.param(None, id="redis7-debian"), pytest.param(REDIS_IMAGE, id="redis8-image")]
RABBITMQ_VERSIONS = [
    pytest.param(None, id="rabbitmq310-debian"),
    pytest.param(RABBITMQ_IMAGE, id="rabbitmq43-image"),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the tests of `broker_versions` modules on each server: session-scoped parameters, so
    that pytest runs each version's tests together and starts each shared server once."""
    if metafunc.definition.get_closest_marker("broker_versions") is None:
        return
    for fixture, versions in (("redis_image", REDIS_VERSIONS), ("rabbit_image", RABBITMQ_VERSIONS)):
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, versions, indirect=True, scope="session")


_STANDINS = pytest.StashKey[dict[str, str | ImageUnavailable]]()


def _standin(config: pytest.Config, official: str) -> str | ImageUnavailable:
    """The stand-in for an official image repository, or why it cannot run here; looked up once."""
    found = config.stash.setdefault(_STANDINS, {})
    if official not in found:
        try:
            found[official] = standin_image(official)
        except ImageUnavailable as reason:
            found[official] = reason
    return found[official]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or fail, REQUIRE_CLUSTER=1) a test on an image that cannot run here. Skipping here,
    not in a fixture, makes pytest fold the skips into one summary line with the reason."""
    callspec = getattr(item, "callspec", None)
    for fixture in ("redis_image", "rabbit_image"):
        official = callspec.params.get(fixture) if callspec else None
        reason = _standin(item.config, official) if official else None
        if isinstance(reason, ImageUnavailable):
            if os.environ.get("REQUIRE_CLUSTER") == "1":
                pytest.fail(f"{reason} (REQUIRE_CLUSTER=1)", pytrace=False)
            pytest.skip(str(reason))


def _image(request: pytest.FixtureRequest) -> str | None:
    official = getattr(request, "param", None)
    if official is None:
        return None
    image = _standin(request.config, official)
    assert isinstance(image, str), image  # pytest_runtest_setup skipped the test otherwise
    return image


@pytest.fixture(scope="session")
def redis_image(request: pytest.FixtureRequest) -> str | None:
    """The image redis-server runs from: None for Debian's redis-server (a local process)."""
    return _image(request)


@pytest.fixture(scope="session")
def rabbit_image(request: pytest.FixtureRequest) -> str | None:
    """The image rabbitmq-server runs from: None for Debian's rabbitmq-server (a local node)."""
    return _image(request)


@pytest.fixture
def redis_server(tmp_path: Path, redis_image: str | None) -> Iterator[RedisServer]:
    """A password-protected redis-server with the append-only file on, for one test."""
    server = RedisServer(tmp_path / "redis", password="test-password", appendonly=True, image=redis_image)
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
def rabbit_server(rabbit_image: str | None) -> Iterator[RabbitServer]:
    """One rabbitmq-server node for the session (a node takes seconds to start), one per version
    where tests run on each; tests that share it keep apart by queue name (`amqp_queue`). Tests
    that restart or reconfigure the broker start a RabbitServer of their own."""
    with RabbitServer(image=rabbit_image) as server:
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
