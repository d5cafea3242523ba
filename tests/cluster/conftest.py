"""The local cluster of `make cluster`: these tests need it (root, a running cluster here).

Without one they skip, for one reason; with REQUIRE_CLUSTER=1 (CI) they fail instead.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = REPO / ".cluster" / "kubeconfig"


def make(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cluster_bin() -> Path:
    result = make("-s", "--eval=print-cluster-bin: ; @echo $(CLUSTER_BIN)", "print-cluster-bin")
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def local_cluster() -> Path:
    """The admin kubeconfig of the running local cluster."""
    if os.geteuid() != 0 or not KUBECONFIG.exists():
        reason = "no local cluster here (make cluster, as root)"
        if os.environ.get("REQUIRE_CLUSTER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return KUBECONFIG


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(cluster_bin() / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def kubectl_json(kubeconfig: Path, *args: str) -> dict:
    return json.loads(kubectl(kubeconfig, *args, "-o", "json"))
