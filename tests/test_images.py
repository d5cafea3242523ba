"""The worker images: built by `make images`, run on a real Docker engine as the charts run them."""

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devkit.docker import DOCKER, docker_problem
from tests.support.images import (
    BUILD_TIMEOUT,
    REPO_ROOT,
    BuiltImages,
    inspect_image,
    make,
    python_image,
    run_container,
)

SUBCOMMANDS = {"fine-queue-worker": "fine", "coarse-queue-worker": "coarse", "indexed-worker": "indexed"}
PACKAGES = {  # what each image's Python can import among these: its extra and nothing else
    "fine-queue-worker": ["jobworker", "redis", "hiredis"],
    "coarse-queue-worker": ["jobworker", "pika"],
    "indexed-worker": ["jobworker"],
}
NAMES = list(SUBCOMMANDS)
USER = "65532"
MAX_ADDED_BYTES = 15_000_000  # an image's bytes on top of its base (MB as docker counts them)
DOCS_ITEMS = ["foo", "bar", "baz", "qux", "xyz"]
PYTHON = "python"  # surely in every image: the base is a Python image and the venv's is on PATH


def package_version() -> str:
    text = (REPO_ROOT / "images/jobworker/src/jobworker/__init__.py").read_text()
    return re.search(r'^__version__ = "(.+)"$', text, re.MULTILINE).group(1)


def python_code(code: str) -> list[str]:
    return [PYTHON, "-c", code]


# --- the Dockerfiles and the Makefile, read as text --------------------------------------------------
def test_dockerfile_conventions() -> None:
    """One Dockerfile, a target per image: the base by ARG, a build stage, a numeric user."""
    text = (REPO_ROOT / "images" / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions[0] == "ARG PYTHON_IMAGE=python:3.12-slim"
    assert [line for line in instructions if line.startswith("FROM ")] == [
        "FROM ${PYTHON_IMAGE} AS build",
        "FROM ${PYTHON_IMAGE} AS worker",
        *(f"FROM worker AS {name}" for name in NAMES),
    ]
    assert "USER 65532:65532" in instructions
    for name in NAMES:
        assert f'ENTRYPOINT ["jobworker", "{SUBCOMMANDS[name]}"]' in instructions
    assert f"ARG VERSION={package_version()}" in instructions  # `docker build` alone labels it right too


def test_the_product_does_not_depend_on_this_machine_s_tools() -> None:
    """Only .ci/run may use ../shared (the tools beside CI's clone): not the Makefile, the images,
    the cluster's tooling or the scripts users run."""
    product = [REPO_ROOT / "Makefile", REPO_ROOT / "images" / "Dockerfile"]
    for directory in ("cluster", "scripts", "charts"):
        product += [
            path
            for path in (REPO_ROOT / directory).rglob("*")
            if path.is_file() and ".venv" not in path.parts
        ]
    for path in product:
        assert "../shared" not in path.read_text(errors="replace"), path


# --- built images ----------------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize("name", NAMES)
def test_make_images_builds_labelled_images(built_images: BuiltImages, name: str) -> None:
    ref = built_images[name]
    assert ref.endswith(f"/{name}:{package_version()}")
    image = inspect_image(ref)
    config = image["Config"]
    assert config["User"] == f"{USER}:{USER}"
    assert config["Entrypoint"] == ["jobworker", SUBCOMMANDS[name]]
    assert "PYTHONUNBUFFERED=1" in config["Env"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == package_version()
    assert labels["org.opencontainers.image.source"] == "https://github.com/jobworker/jobworker"
    assert labels["org.opencontainers.image.title"] == name
    assert labels["org.opencontainers.image.description"]
    assert labels["org.opencontainers.image.base.name"] == built_images.base
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if head.returncode == 0:
        assert labels["org.opencontainers.image.revision"] == head.stdout.strip()


@pytest.mark.docker
@pytest.mark.parametrize("name", NAMES)
def test_runs_as_numeric_non_root_on_a_read_only_root(built_images: BuiltImages, name: str) -> None:
    probe = (
        "import os\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n"
        "    open('/probe', 'w')\n"
        "except OSError as error:\n"
        "    print('root filesystem:', error.strerror)\n"
        "open('/tmp/probe', 'w').write('ok')\n"
        "print('tmp: writable')\n"
    )
    result = run_container(built_images[name], command=python_code(probe))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        f"{USER} {USER}",
        "root filesystem: Read-only file system",
        "tmp: writable",
    ]


@pytest.mark.docker
@pytest.mark.parametrize("name", NAMES)
def test_help_through_the_entrypoint(built_images: BuiltImages, name: str) -> None:
    result = run_container(built_images[name], args=["--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith(f"usage: jobworker {SUBCOMMANDS[name]}")


@pytest.mark.docker
@pytest.mark.parametrize("name", NAMES)
def test_only_the_worker_and_its_extra_are_added(built_images: BuiltImages, name: str) -> None:
    """No pip, setuptools or tests in what the image adds to its base, and every module compiled.

    The root filesystem is read-only in the charts, so Python could not cache bytecode at run time:
    a module without its .pyc would be compiled again by every pod.
    """
    probe = (
        "import importlib.util, os, sys\n"
        "names = ['jobworker', 'redis', 'hiredis', 'pika', 'pip', 'setuptools', 'wheel']\n"
        "print(' '.join(n for n in names if importlib.util.find_spec(n)))\n"
        "for top, dirs, files in os.walk(sys.prefix):\n"
        "    for entry in dirs + files:\n"
        "        if entry in ('tests', 'test') or entry.startswith('pip'):\n"
        "            print('unwanted', os.path.join(top, entry))\n"
        "        if entry.endswith('.py'):\n"
        "            compiled = importlib.util.cache_from_source(os.path.join(top, entry))\n"
        "            if not os.path.exists(compiled):\n"
        "                print('not compiled', os.path.join(top, entry))\n"
    )
    result = run_container(built_images[name], command=python_code(probe))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0].split() == PACKAGES[name]
    assert lines[1:] == []


# Each worker run up to the broker it cannot reach (nothing listens on port 1 of localhost, which
# a name lookup finds), or its program: everything it imports before its first item. Then the line
# that shows it got there.
STARTS = {
    "fine-queue-worker": (
        ["--redis-url", "redis://localhost:1", "--queue", "q", "--connect-timeout", "1", "--", "true"],
        "cannot reach Redis at localhost:1",
    ),
    "coarse-queue-worker": (
        ["--amqp-url", "amqp://u:p@localhost:1/", "--queue", "q", "--connect-timeout", "1", "--", "true"],
        "cannot reach RabbitMQ at localhost:1",
    ),
    "indexed-worker": (["--index", "0", "--", "true"], "index 0 (from --index)"),
}  # fmt: skip
ENTRYPOINT_SCRIPT = "/opt/jobworker/bin/jobworker"  # the console script the ENTRYPOINT runs
COMPILED_FROM_SOURCE = re.compile(r"^# code object from (/\S+\.py)$", re.MULTILINE)  # `python -v`


@pytest.fixture(scope="module")
def images_on_a_base_without_bytecode() -> Iterator[dict[str, str]]:
    """The worker images built on PYTHON_IMAGE with its standard library's *.pyc deleted, as the
    official python images ship it (their Dockerfile deletes every *.pyc it installed)."""
    problem = docker_problem()
    if problem:
        pytest.skip(f"{problem} (bash .ci/run starts one)")
    base = f"jobworker-test/python-without-bytecode:{secrets.token_hex(4)}"
    tag = "without-bytecode"
    stdlib = "$(python3 -c 'import sysconfig; print(sysconfig.get_path(\"stdlib\"))')"
    dockerfile = f"FROM {python_image()}\nRUN find {stdlib} -name '*.pyc' -delete\n"
    subprocess.run(
        [DOCKER, "build", "--quiet", "--tag", base, "-"],
        input=dockerfile.encode(),
        capture_output=True,
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    refs = {name: f"jobworker-test/{name}:{tag}" for name in NAMES}
    try:
        built = make(
            "images", f"PYTHON_IMAGE={base}", "REGISTRY=jobworker-test", f"TAG={tag}", timeout=BUILD_TIMEOUT
        )
        assert built.returncode == 0, (built.stdout + built.stderr)[-3000:]
        yield refs
    finally:
        subprocess.run([DOCKER, "rmi", "--force", *refs.values(), base], capture_output=True, check=False)


@pytest.mark.docker
@pytest.mark.parametrize("name", NAMES)
def test_a_worker_starts_from_bytecode_on_a_base_without_it(
    images_on_a_base_without_bytecode: dict[str, str], name: str
) -> None:
    """With the charts' read-only root filesystem no bytecode is cached at run time: a module the
    image has no .pyc for is compiled by every pod, and that was most of a start (see the
    Dockerfile)."""
    args, reached = STARTS[name]
    run = run_container(
        images_on_a_base_without_bytecode[name],
        command=[PYTHON, "-v", ENTRYPOINT_SCRIPT, SUBCOMMANDS[name], *args],
    )
    log = run.stderr.decode()
    assert reached in log, log[-2000:]
    compiled = COMPILED_FROM_SOURCE.findall(log)
    assert compiled == [], f"compiled from source at each start: {' '.join(compiled)}"


@pytest.mark.docker
def test_added_size_is_small(built_images: BuiltImages) -> None:
    """Each image adds at most 15 MB to its base, as measured by scripts/image-sizes.py."""
    refs = [built_images[name] for name in NAMES]
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/image-sizes.py"), "--json", *refs],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["image"]: row for row in json.loads(result.stdout)}
    base = inspect_image(built_images.base)
    for ref in refs:
        row = rows[ref]
        image = inspect_image(ref)
        assert image["RootFS"]["Layers"][: len(base["RootFS"]["Layers"])] == base["RootFS"]["Layers"]
        assert row["base"] == built_images.base
        assert row["added_bytes"] == image["Size"] - base["Size"]
        assert 0 < row["added_bytes"] <= MAX_ADDED_BYTES, f"{ref} adds {row['added_bytes']} bytes"


# --- the indexed worker (the charts run every image on a cluster in tests/e2e) ------------------------
@pytest.mark.docker
def test_indexed_image_passes_the_exit_status_on(built_images: BuiltImages) -> None:
    result = run_container(
        built_images["indexed-worker"], args=["--index", "0", "--", *python_code("import sys; sys.exit(42)")]
    )
    assert result.returncode == 42


@pytest.mark.docker
def test_indexed_image_rejects_a_missing_index(built_images: BuiltImages) -> None:
    result = run_container(built_images["indexed-worker"], args=["--", "cat"])
    assert result.returncode == 1
    assert "no completion index" in result.stderr.decode()
