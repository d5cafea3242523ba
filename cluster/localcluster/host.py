"""What the machine must give the cluster: root, a few Debian packages, and three kernel settings.

runc, the CNI plugins and conntrack come from Debian's archive (the rest is built from Go modules).
The kernel settings the cluster needs are recorded before they change and put back by
`make cluster-down`, so that the machine is left as it was found.
"""

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

from localcluster.layout import Layout

log = logging.getLogger("localcluster")

CNI_PLUGINS = Path("/usr/lib/cni")  # where Debian's containernetworking-plugins puts them
# A program the cluster runs, and the Debian package that has it.
PACKAGES = {
    "runc": "runc",
    "conntrack": "conntrack",
    "iptables": "iptables",
    str(CNI_PLUGINS / "bridge"): "containernetworking-plugins",
}
# Paths outside the cluster's own directories that its programs create whatever they are told: the
# kubelet's device-plugin socket, libcni's cache of results, the kubelet's links to pod logs.
HOST_PATHS = (Path("/var/lib/kubelet"), Path("/var/lib/cni"), Path("/var/log/containers"))
SYSCTLS = {
    "net/ipv4/ip_forward": "1",  # pods' traffic is routed through the host
    "net/bridge/bridge-nf-call-iptables": "1",  # kube-proxy's rules must see bridged traffic
    "net/bridge/bridge-nf-call-ip6tables": "1",
}


class ClusterError(Exception):
    """A problem the user can act on, said in one line."""


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise ClusterError(
            f"{action} needs root: it starts a kubelet, mounts and changes iptables (run it with sudo)"
        )


def install_packages() -> None:
    """apt-get install the Debian packages of whatever program is missing."""
    missing = sorted({package for program, package in PACKAGES.items() if not _found(program)})
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise ClusterError(f"missing {' '.join(missing)}: install these Debian packages or their equivalents")
    log.info("installing %s", " ".join(missing))
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"{' '.join(command)} failed: {result.stderr.strip().splitlines()[-1:]}")


def _found(program: str) -> bool:
    return Path(program).exists() if program.startswith("/") else shutil.which(program) is not None


def apply_sysctls(layout: Layout) -> None:
    """Set the kernel settings, first recording the values found (once: a rerun keeps the originals)."""
    if not layout.saved_sysctls.exists():
        found = {name: _sysctl_path(name).read_text().strip() for name in SYSCTLS}
        layout.saved_sysctls.write_text(json.dumps(found))
    for name, value in SYSCTLS.items():
        _sysctl_path(name).write_text(value)


def restore_sysctls(layout: Layout) -> None:
    if not layout.saved_sysctls.exists():
        return
    for name, value in json.loads(layout.saved_sysctls.read_text()).items():
        _sysctl_path(name).write_text(value)
    layout.saved_sysctls.unlink()


def record_host_paths(layout: Layout) -> None:
    """Note which of HOST_PATHS exist before the cluster starts (once, as for the sysctls)."""
    if not layout.created_paths.exists():
        layout.created_paths.write_text(json.dumps([str(path) for path in HOST_PATHS if not path.exists()]))


def remove_host_paths(layout: Layout) -> None:
    """Remove the HOST_PATHS that the cluster created."""
    if not layout.created_paths.exists():
        return
    for path in json.loads(layout.created_paths.read_text()):
        shutil.rmtree(path, ignore_errors=True)
    layout.created_paths.unlink()


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name
