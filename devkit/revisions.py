"""The jobworker package as of a git revision, for benchmarks that measure a change against it.

A benchmark that runs the work tree's worker right next to the same worker as of `HEAD` (or any
revision) sees both on the same machine at the same moment, which a comparison of two separate
runs on a shared machine does not; this extracts the revision's package so that a worker started
with `PYTHONPATH=<the returned directory>` imports it instead of the work tree's.
"""

import io
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_SOURCE = "images/jobworker/src"
GIT = "git"


def jobworker_source(revision: str, directory: Path) -> Path:
    """Extract the package as of `revision` under `directory`; the directory to put on PYTHONPATH.

    Exits with one line naming the revision when git cannot read it.
    """
    archive = subprocess.run(
        [GIT, "-C", str(REPO_ROOT), "archive", "--format=tar", revision, f"{PACKAGE_SOURCE}/jobworker"],
        capture_output=True,
        check=False,
    )
    if archive.returncode:
        reason = archive.stderr.decode().strip().splitlines()[-1:] or ["git archive failed"]
        raise SystemExit(f"cannot read jobworker as of revision {revision!r}: {reason[0]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(directory, filter="data")
    return directory / PACKAGE_SOURCE


def check_imported_from(source: Path, python: str, env: Mapping[str, str]) -> None:
    """Exit unless `python` in `env` imports jobworker from `source`: a copy found first on its path
    would turn a comparison of two packages into one of a package with itself."""
    where = subprocess.run(
        [python, "-c", "import jobworker; print(jobworker.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = Path(where.stdout.strip()).resolve()
    if where.returncode or not found.is_relative_to(source.resolve()):
        raise SystemExit(f"the compared worker imports jobworker from {found}, not from {source}")
