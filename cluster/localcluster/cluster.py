"""Bringing the cluster up (or reusing the one that runs) and taking it down without a trace."""

import json
import logging
import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

from localcluster import checks, components, daemons, host, network, pki
from localcluster.images import import_images
from localcluster.layout import ETCD_CLIENT_PORT, PROGRAMS, Layout
from localcluster.standins import ImageMap

log = logging.getLogger("localcluster")
START_SECONDS = 120  # for each program to answer; the first start of etcd and the API server is slowest
SANDBOX_IMAGE = "registry.k8s.io/pause:3.10.1"  # containerd 2.2's; the stand-in is used in its place
DNS_CHECK_IMAGE = "docker.io/library/python"  # any image with python3 and the C library's resolver


def healthy(layout: Layout) -> bool:
    """Every program of this build runs, the API server is ready and the node is Ready."""
    if any(daemons.pid_of(layout, name) is None for name in PROGRAMS):
        return False
    return checks.api_ready(layout) and checks.node_ready(layout)


def up(
    layout: Layout, kubernetes_version: str, standins: ImageMap, images: list[str], kubeconfig: Path
) -> str:
    """Start the cluster, or reuse the healthy one that runs; import the stand-ins and `images`
    into it; copy the admin kubeconfig to `kubeconfig`. Returns one line saying what was done."""
    host.require_root("make cluster")
    every_image = [*standins.stand_ins(), *images]
    if healthy(layout):
        import_images(layout, every_image)
        _copy_kubeconfig(layout, kubeconfig)
        return f"reused the running cluster; kubeconfig: {kubeconfig}"
    host.install_packages()
    down(layout, quiet=True)  # whatever a killed cluster left behind
    for directory in (
        layout.config,
        layout.logs,
        layout.pids,
        layout.kubeconfigs,
        layout.cni_config,
        layout.cni_data,
        layout.volumes,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    host.apply_sysctls(layout)
    network.create_bridge()
    pki.make_pki(layout, kubernetes_version)
    host.record_host_paths(layout)
    command_lines = components.programs(layout, standins.for_official(SANDBOX_IMAGE))
    _start(layout, "etcd", command_lines, lambda: _etcd_ready(layout))
    _start(layout, "kube-apiserver", command_lines, lambda: checks.api_ready(layout))
    # As kubeadm does, with the one kubeconfig of group system:masters: RBAC is not set up yet.
    super_admin = layout.kubeconfigs / "super-admin.conf"
    checks.kubectl(layout, "apply", "-f", "-", stdin=components.BOOTSTRAP_OBJECTS, kubeconfig=super_admin)
    for name in ("kube-controller-manager", "kube-scheduler"):
        _start(layout, name, command_lines)
    _start(layout, "containerd", command_lines, layout.containerd_socket.exists)
    import_images(layout, every_image)
    (layout.cni_config / "10-jobworker.conflist").write_text(components.cni_config(layout))
    _start(layout, "kubelet", command_lines, lambda: checks.node_ready(layout))
    for name in ("kube-proxy", "coredns", "volume-provisioner"):
        _start(layout, name, command_lines)
    resolved = checks.check_dns(layout, standins.for_repository(DNS_CHECK_IMAGE))
    log.info("DNS inside a pod: %s", " ".join(resolved.split()))
    _copy_kubeconfig(layout, kubeconfig)
    return f"started a cluster; kubeconfig: {kubeconfig}"


def _start(
    layout: Layout, name: str, command_lines: dict[str, list[str]], ready: Callable[[], bool] | None = None
) -> None:
    daemons.start(layout, name, command_lines[name])
    alive = lambda: daemons.pid_of(layout, name) is not None  # noqa: E731
    daemons.wait_for(layout, f"{name} running", alive, 2, name)
    if ready is not None:
        daemons.wait_for(layout, f"{name} ready", lambda: alive() and ready(), START_SECONDS, name)


def _etcd_ready(layout: Layout) -> bool:
    """etcd's /health answers true, over TLS with the client certificate kubeadm made for it."""
    context = ssl.create_default_context(cafile=layout.pki / "etcd" / "ca.crt")
    client = layout.pki / "etcd" / "healthcheck-client"
    context.load_cert_chain(f"{client}.crt", f"{client}.key")
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{ETCD_CLIENT_PORT}/health", context=context, timeout=2
        ) as answer:
            return json.load(answer).get("health") == "true"
    except (OSError, ValueError):
        return False


def _copy_kubeconfig(layout: Layout, kubeconfig: Path) -> None:
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.admin_kubeconfig, kubeconfig)
    kubeconfig.chmod(0o600)


def down(layout: Layout, quiet: bool = False) -> None:
    """Remove every trace: processes (the programs, the pods' shims and containers), mounts, the
    bridge and its veths, the iptables chains, the state directories, the kernel settings."""
    host.require_root("make cluster-down")
    ours = sorted({*daemons.processes_with(str(layout.state)), *daemons.processes_with(str(layout.run))})
    if ours and not quiet:
        log.info("stopping %d processes", len(ours))
    daemons.terminate(ours)
    _kill_pod_cgroups()
    _unmount_under(layout.state, layout.run)
    network.remove_bridge()
    if layout.program("kube-proxy").exists():
        subprocess.run([str(layout.program("kube-proxy")), "--cleanup"], capture_output=True, check=False)
    network.clean_iptables()
    host.restore_sysctls(layout)
    host.remove_host_paths(layout)
    _remove_pod_log_links(layout)
    for directory in (layout.state, layout.run):
        shutil.rmtree(directory, ignore_errors=True)


def _kill_pod_cgroups() -> None:
    """SIGKILL what still runs in the pods' cgroups (kubepods, in every cgroup v1 hierarchy), then
    remove those cgroups, deepest first."""
    roots = [path for path in Path("/sys/fs/cgroup").glob("*/kubepods") if path.is_dir()]
    pids = {
        int(pid)
        for root in roots
        for procs in root.rglob("cgroup.procs")
        for pid in procs.read_text().split()
    }
    daemons.terminate(sorted(pids), seconds=2)
    for root in roots:
        cgroups = sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for cgroup in [*cgroups, root]:
            daemons.wait_for(Layout(), f"{cgroup} removed", lambda cgroup=cgroup: _rmdir(cgroup), 10)


def _rmdir(directory: Path) -> bool:
    """rmdir, true once the directory is gone: a cgroup is busy until its last process has exited."""
    try:
        directory.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _unmount_under(*directories: Path) -> None:
    """Every mount point below the directories (pods' volumes, container root filesystems, network
    namespaces), deepest first, detached so that a busy one cannot stop the cleanup."""
    prefixes = tuple(f"{directory}/" for directory in directories)
    mount_points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefixes)
    ]
    for mount_point in sorted(set(mount_points), key=lambda p: p.count("/"), reverse=True):
        subprocess.run(["umount", "--lazy", mount_point], capture_output=True, check=False)


def _remove_pod_log_links(layout: Layout) -> None:
    """The kubelet links /var/log/containers/* to the pods' logs; the directory goes too if it is
    left empty."""
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        if link.is_symlink() and os.readlink(link).startswith(f"{layout.state}/"):
            link.unlink()
    if not any(links.iterdir()):
        links.rmdir()


def traces(layout: Layout) -> list[str]:
    """What of the cluster is on the machine, one line each: nothing, after `down`."""
    found = [
        f"process {pid}"
        for pid in {*daemons.processes_with(str(layout.state)), *daemons.processes_with(str(layout.run))}
    ]
    prefixes = (f"{layout.state}/", f"{layout.run}/")
    found += [
        f"mount {line.split()[4]}"
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefixes)
    ]
    found += [f"directory {path}" for path in (layout.state, layout.run) if path.exists()]
    found += [f"cgroup {path}" for path in Path("/sys/fs/cgroup").glob("*/kubepods")]
    found += [f"link {name}" for name in network.links()]
    found += [f"iptables chain {chain}" for chain in network.chains()]
    return sorted(found)
