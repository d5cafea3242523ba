"""Every name, path, address and port of the local cluster, in one place.

The cluster belongs to the machine, not to a checkout: its state lives under /var/lib and /run, so
that `make cluster` in a second clone finds and reuses the cluster a first one started, and
`make cluster-down` from any clone removes it. Each checkout gets a copy of the admin kubeconfig in
its own .cluster/ directory.

The node's address is the pods' bridge gateway (10.244.0.1), created before anything starts: the
API server, the kubelet and CoreDNS listen there, so pods reach them through the bridge and nothing
depends on the machine's own network or resolver.
"""

from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "jobworker"
CLUSTER_NAME = "jobworker-local"
BRIDGE = "cni0"
NODE_IP = "10.244.0.1"
POD_SUBNET = "10.244.0.0/24"  # the one node's pods; host-local hands out addresses from it
CLUSTER_CIDR = "10.244.0.0/16"  # what kube-proxy treats as pod traffic
SERVICE_SUBNET = "10.96.0.0/16"
DNS_SERVICE_IP = "10.96.0.10"
DNS_DOMAIN = "cluster.local"
API_PORT = 6443
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
COREDNS_HEALTH = "127.0.0.1:18080"
COREDNS_READY = "127.0.0.1:18181"
STORAGE_CLASS = "standard"  # the default StorageClass, served by volume-provisioner
CONTAINERD_NAMESPACE = "k8s.io"  # the namespace the CRI plugin keeps pods' images in
# The order in which the programs start; they stop in the reverse order.
PROGRAMS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "kube-proxy",
    "coredns",
    "volume-provisioner",
)


@dataclass(frozen=True)
class Layout:
    """Where the cluster keeps what: state (survives a stop), runtime (sockets, pids), binaries."""

    state: Path = Path("/var/lib/jobworker-cluster")
    run: Path = Path("/run/jobworker-cluster")
    bin: Path = Path("/nonexistent")  # cluster/build-binaries output; given by the Makefile

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def kubeconfigs(self) -> Path:
        return self.state / "kubeconfigs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfigs / "admin.conf"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def containerd_root(self) -> Path:
        return self.state / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def volumes(self) -> Path:
        return self.state / "volumes"  # the PersistentVolumes' directories

    @property
    def cni_config(self) -> Path:
        return self.state / "cni" / "net.d"

    @property
    def cni_data(self) -> Path:
        return self.state / "cni" / "data"  # host-local's record of the addresses it gave out

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    @property
    def saved_sysctls(self) -> Path:
        return self.state / "sysctls.json"

    @property
    def created_paths(self) -> Path:
        return self.state / "created-paths.json"

    def program(self, name: str) -> Path:
        return self.bin / name
