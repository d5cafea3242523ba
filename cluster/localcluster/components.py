"""The configuration and command line of each program of the cluster.

The control plane's flags are those kubeadm gives its static pods (cmd/kubeadm/app/phases), with
this machine's paths; the node's programs take configuration files. Every path, address and port
comes from layout.py. `programs()` returns the command lines in start order.
"""

from pathlib import Path

from localcluster.host import CNI_PLUGINS
from localcluster.layout import (
    API_PORT,
    BRIDGE,
    CLUSTER_CIDR,
    CLUSTER_NAME,
    COREDNS_HEALTH,
    COREDNS_READY,
    DNS_DOMAIN,
    DNS_SERVICE_IP,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    NODE_IP,
    NODE_NAME,
    POD_SUBNET,
    SERVICE_SUBNET,
    STORAGE_CLASS,
    Layout,
)
from localcluster.pki import COREDNS_USER, PROVISIONER_USER

CNI_NETWORK = "jobworker"


def programs(layout: Layout, sandbox_image: str) -> dict[str, list[str]]:
    """Each program's command line, writing the configuration files they read first."""
    pki, kubeconfigs = layout.pki, layout.kubeconfigs
    etcd_url = f"https://127.0.0.1:{ETCD_CLIENT_PORT}"
    peer_url = f"https://127.0.0.1:{ETCD_PEER_PORT}"
    controller_manager = kubeconfigs / "controller-manager.conf"
    scheduler = kubeconfigs / "scheduler.conf"
    return {
        "etcd": [
            "etcd",
            f"--name={NODE_NAME}",
            f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={NODE_NAME}={peer_url}",
            f"--cert-file={pki}/etcd/server.crt",
            f"--key-file={pki}/etcd/server.key",
            f"--trusted-ca-file={pki}/etcd/ca.crt",
            "--client-cert-auth=true",
            f"--peer-cert-file={pki}/etcd/peer.crt",
            f"--peer-key-file={pki}/etcd/peer.key",
            f"--peer-trusted-ca-file={pki}/etcd/ca.crt",
            "--peer-client-cert-auth=true",
            "--listen-metrics-urls=http://127.0.0.1:2381",
        ],
        "kube-apiserver": [
            "kube-apiserver",
            f"--advertise-address={NODE_IP}",
            f"--secure-port={API_PORT}",
            "--allow-privileged=true",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-cluster-ip-range={SERVICE_SUBNET}",
            f"--service-account-issuer=https://kubernetes.default.svc.{DNS_DOMAIN}",
            f"--service-account-key-file={pki}/sa.pub",
            f"--service-account-signing-key-file={pki}/sa.key",
            f"--client-ca-file={pki}/ca.crt",
            f"--tls-cert-file={pki}/apiserver.crt",
            f"--tls-private-key-file={pki}/apiserver.key",
            f"--kubelet-client-certificate={pki}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={pki}/apiserver-kubelet-client.key",
            "--kubelet-preferred-address-types=InternalIP",
            f"--etcd-servers={etcd_url}",
            f"--etcd-cafile={pki}/etcd/ca.crt",
            f"--etcd-certfile={pki}/apiserver-etcd-client.crt",
            f"--etcd-keyfile={pki}/apiserver-etcd-client.key",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--requestheader-client-ca-file={pki}/front-proxy-ca.crt",
            "--requestheader-allowed-names=front-proxy-client",
            f"--proxy-client-cert-file={pki}/front-proxy-client.crt",
            f"--proxy-client-key-file={pki}/front-proxy-client.key",
        ],
        "kube-controller-manager": [
            "kube-controller-manager",
            "--bind-address=127.0.0.1",
            f"--cluster-name={CLUSTER_NAME}",
            f"--kubeconfig={controller_manager}",
            f"--authentication-kubeconfig={controller_manager}",
            f"--authorization-kubeconfig={controller_manager}",
            f"--client-ca-file={pki}/ca.crt",
            f"--requestheader-client-ca-file={pki}/front-proxy-ca.crt",
            f"--root-ca-file={pki}/ca.crt",
            f"--service-account-private-key-file={pki}/sa.key",
            f"--cluster-signing-cert-file={pki}/ca.crt",
            f"--cluster-signing-key-file={pki}/ca.key",
            "--use-service-account-credentials=true",
            "--controllers=*,bootstrapsigner,tokencleaner",
        ],
        "kube-scheduler": [
            "kube-scheduler",
            "--bind-address=127.0.0.1",
            f"--kubeconfig={scheduler}",
            f"--authentication-kubeconfig={scheduler}",
            f"--authorization-kubeconfig={scheduler}",
        ],
        "containerd": [
            "containerd",
            f"--config={_write(layout, 'containerd.toml', containerd_config(layout, sandbox_image))}",
        ],
        "kubelet": [
            "kubelet",
            f"--config={_write(layout, 'kubelet.yaml', kubelet_config(layout))}",
            f"--kubeconfig={kubeconfigs}/kubelet.conf",
            f"--root-dir={layout.kubelet_root}",
            f"--cert-dir={layout.kubelet_root}/pki",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
        ],
        "kube-proxy": [
            "kube-proxy",
            f"--config={_write(layout, 'kube-proxy.yaml', kube_proxy_config(layout))}",
        ],
        "coredns": ["coredns", "-conf", str(_write(layout, "Corefile", corefile(layout)))],
        "volume-provisioner": [
            "volume-provisioner",
            f"--kubeconfig={kubeconfigs}/volume-provisioner.conf",
            f"--root={layout.volumes}",
            f"--node={NODE_NAME}",
        ],
    }


def _write(layout: Layout, name: str, text: str) -> Path:
    path = layout.config / name
    path.write_text(text)
    return path


def containerd_config(layout: Layout, sandbox_image: str) -> str:
    """containerd 2's configuration: its own root, state and socket, beside any other containerd
    (Docker's) on the machine; no host-wide configuration, NRI or CDI directories are read."""
    return f"""\
version = 3
root = '{layout.containerd_root}'
state = '{layout.containerd_state}'
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri']

[grpc]
  address = '{layout.containerd_socket}'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{sandbox_image}'

[plugins.'io.containerd.cri.v1.runtime']
  enable_cdi = false
  netns_mounts_under_state_dir = true
  # This machine withholds CAP_SYS_RESOURCE even from root, so no process may lower its
  # oom_score_adj; the kubelet asks -998 for sandboxes and -997 for Guaranteed pods. Restricted,
  # containerd raises such values to its own (0), and runc can start the containers.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      Root = '{layout.run}/runc'
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{CNI_PLUGINS}']
    conf_dir = '{layout.cni_config}'

[plugins.'io.containerd.internal.v1.opt']
  path = '{layout.state}/opt'
"""


def cni_config(layout: Layout) -> str:
    """A bridge with host-local addresses; the firewall plugin accepts the pods' forwarded traffic,
    which Docker's FORWARD policy (DROP) would otherwise drop."""
    return f"""\
{{
  "cniVersion": "1.0.0",
  "name": "{CNI_NETWORK}",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "dataDir": "{layout.cni_data}",
        "ranges": [[{{"subnet": "{POD_SUBNET}", "gateway": "{NODE_IP}"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}]
      }}
    }},
    {{"type": "portmap", "capabilities": {{"portMappings": true}}}},
    {{"type": "firewall", "backend": "iptables"}}
  ]
}}
"""


def kubelet_config(layout: Layout) -> str:
    """cgroup v1 through cgroupfs (no systemd here); no resolver of the machine's for pods; image
    garbage collection and disk evictions off, since nothing could pull an image back."""
    resolv_conf = _write(layout, "resolv.conf", "")
    return f"""\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://{layout.containerd_socket}
address: {NODE_IP}
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {layout.pki}/ca.crt
authorization:
  mode: Webhook
clusterDomain: {DNS_DOMAIN}
clusterDNS: [{DNS_SERVICE_IP}]
resolvConf: {resolv_conf}
podLogsDir: {layout.state}/pod-logs
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "0%"
  imagefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.inodesFree: "0%"
"""


def kube_proxy_config(layout: Layout) -> str:
    return f"""\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: {CLUSTER_CIDR}
hostnameOverride: {NODE_NAME}
clientConnection:
  kubeconfig: {layout.kubeconfigs}/kube-proxy.conf
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack:
  maxPerCore: 0
"""


def corefile(layout: Layout) -> str:
    """Cluster names only: there is no `forward`, since the machine's resolver is not the pods'."""
    return f"""\
{DNS_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_IP}
    errors
    health {COREDNS_HEALTH}
    ready {COREDNS_READY}
    kubernetes {DNS_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {layout.kubeconfigs}/coredns.conf
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loadbalance
}}
"""


# The objects kubeadm would create after the API server starts, for what runs here: cluster-admin
# for its admin kubeconfig's group, CoreDNS's read access, the kube-dns Service in front of the
# CoreDNS host process (endpoints by hand: there is no pod to select), and the default
# StorageClass with the rights of its provisioner.
BOOTSTRAP_OBJECTS = f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:cluster-admins
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: kubeadm:cluster-admins
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: {COREDNS_USER}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:volume-provisioner
rules:
  - apiGroups: [""]
    resources: [persistentvolumeclaims]
    verbs: [list]
  - apiGroups: [""]
    resources: [persistentvolumes]
    verbs: [list, create, delete]
  - apiGroups: [storage.k8s.io]
    resources: [storageclasses]
    verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:volume-provisioner
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:volume-provisioner
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: {PROVISIONER_USER}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {STORAGE_CLASS}
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: localcluster.jobworker.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels:
    k8s-app: kube-dns
spec:
  clusterIP: {DNS_SERVICE_IP}
  ports:
    - name: dns
      port: 53
      protocol: UDP
    - name: dns-tcp
      port: 53
      protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-host
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: localcluster
addressType: IPv4
endpoints:
  - addresses: ["{NODE_IP}"]
    conditions:
      ready: true
ports:
  - name: dns
    port: 53
    protocol: UDP
  - name: dns-tcp
    port: 53
    protocol: TCP
"""
