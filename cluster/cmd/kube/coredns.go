package main

// The CoreDNS plugins the cluster's Corefile uses, and no others: upstream's full set
// (core/plugin) pulls in the cloud providers' SDKs. The cluster's DNS answers for cluster.local
// only and forwards nowhere, since the machine's resolver is not the cluster's to use.
import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)
