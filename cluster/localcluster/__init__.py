"""A single-node Kubernetes on this machine, as host processes, for the charts' tests and demo.

`make cluster` runs `python -m localcluster up`: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, containerd, kubelet, kube-proxy and CoreDNS, all from the binaries that
cluster/build-binaries makes from cluster/go.mod, with the images the charts need imported into
containerd (no registry is needed). `make cluster-down` runs `python -m localcluster down`, which
removes every trace. Modules:

- layout:     every name, path, address and port, in one place
- host:       what the machine must have and the kernel settings the cluster changes
- pki:        certificates and kubeconfigs (kubeadm's own phases)
- components: the configuration and command line of each program
- daemons:    starting, watching and stopping the programs
- network:    the pods' bridge, the CNI configuration and the cleanup of iptables chains
- images:     importing image archives into containerd
- cluster:    bringing it all up (or reusing it) and down
- checks:     the node is Ready and DNS answers inside a pod
"""
