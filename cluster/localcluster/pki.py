"""Certificates and kubeconfigs, made by kubeadm's own phases.

kubeadm knows which certificate each component needs (names, SANs, the Node authorizer's
`system:node:<name>` identity for the kubelet), so the cluster uses its `init phase certs` and
`init phase kubeconfig` rather than a hand-written CA. It runs no other phase: the control plane
here is host processes, not static pods. kube-proxy and CoreDNS get client certificates of their
own (`kubeadm kubeconfig user`), as does the volume provisioner; components.py binds them to roles.
"""

import subprocess

from localcluster.host import ClusterError
from localcluster.layout import (
    API_PORT,
    CLUSTER_CIDR,
    CLUSTER_NAME,
    DNS_DOMAIN,
    NODE_IP,
    NODE_NAME,
    SERVICE_SUBNET,
    Layout,
)

KUBE_PROXY_USER = "system:kube-proxy"  # bound to system:node-proxier by Kubernetes' default RBAC
COREDNS_USER = "system:coredns"  # these two are bound to roles components.BOOTSTRAP_OBJECTS creates
PROVISIONER_USER = "system:volume-provisioner"


def kubeadm_config(layout: Layout, kubernetes_version: str) -> str:
    return f"""\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {NODE_IP}
  bindPort: {API_PORT}
nodeRegistration:
  name: {NODE_NAME}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: {CLUSTER_NAME}
kubernetesVersion: {kubernetes_version}
certificatesDir: {layout.pki}
controlPlaneEndpoint: {NODE_IP}:{API_PORT}
apiServer:
  certSANs: ["127.0.0.1", "localhost"]
networking:
  dnsDomain: {DNS_DOMAIN}
  serviceSubnet: {SERVICE_SUBNET}
  podSubnet: {CLUSTER_CIDR}
"""


def make_pki(layout: Layout, kubernetes_version: str) -> None:
    """Every certificate and kubeconfig, unless an earlier start made them (they are reused)."""
    if layout.admin_kubeconfig.exists():
        return
    config = layout.config / "kubeadm.yaml"
    config.write_text(kubeadm_config(layout, kubernetes_version))
    kubeadm = str(layout.program("kubeadm"))
    target = ["--config", str(config), "--kubeconfig-dir", str(layout.kubeconfigs)]
    _run([kubeadm, "init", "phase", "certs", "all", "--config", str(config)])
    # The admin kubeconfig is written last, so that its presence means all of them are there.
    for phase in ("controller-manager", "scheduler", "kubelet", "super-admin"):
        _run([kubeadm, "init", "phase", "kubeconfig", phase, *target])
    users = (
        (KUBE_PROXY_USER, "kube-proxy"),
        (COREDNS_USER, "coredns"),
        (PROVISIONER_USER, "volume-provisioner"),
    )
    for user, name in users:
        kubeconfig = _run([kubeadm, "kubeconfig", "user", "--config", str(config), "--client-name", user])
        (layout.kubeconfigs / f"{name}.conf").write_text(kubeconfig)
    _run([kubeadm, "init", "phase", "kubeconfig", "admin", *target])


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(command[1:5])} failed: {result.stderr.strip()[-500:]}")
    return result.stdout
