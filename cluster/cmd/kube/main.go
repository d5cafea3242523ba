// Command kube holds every program of the local cluster in one binary, as busybox does: the
// Kubernetes control plane and node components, kubectl and kubeadm (for its certificates), etcd,
// containerd with ctr, and CoreDNS. Linking them once instead of ten times saves most of a cold build, and one binary is
// one thing to cache.
//
// It runs the program named by the name it was started as (a symlink such as kube-apiserver), or
// by its first argument (`kube kubelet --config ...`). Each program starts exactly as its upstream
// main package does; their versions are those of go.mod.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	_ "time/tzdata" // CronJob time zones, as the upstream apiserver and controller-manager embed

	"github.com/coredns/coredns/coremain"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeadm "k8s.io/kubernetes/cmd/kubeadm/app"
	kubeadmerrors "k8s.io/kubernetes/cmd/kubeadm/app/util/errors"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// programs maps each program's name to its upstream main, returning the exit status.
var programs = map[string]func() int{
	"kube-apiserver":          func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
	"kube-scheduler":          func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kubelet":                 func() int { return cli.Run(kubelet.NewKubeletCommand(context.Background())) },
	"kube-proxy":              func() int { return cli.Run(proxy.NewProxyCommand()) },
	"kubectl":                 runKubectl,
	"kubeadm":                 func() int { kubeadmerrors.HandleError(kubeadm.Run()); return 0 },
	"etcd":                    func() int { etcdmain.Main(os.Args); return 0 },
	"coredns":                 func() int { coremain.Run(); return 0 },
	"volume-provisioner":      runVolumeProvisioner,
}

func runKubectl() int {
	logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) //nolint:errcheck // as upstream kubectl
	if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
		kubectlutil.CheckErr(err)
	}
	return 0
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := programs[name]; !ok && len(os.Args) > 1 {
		// `kube NAME args...`: run NAME as if it had been started under its own name.
		name = os.Args[1]
		os.Args = append([]string{name}, os.Args[2:]...)
	}
	if name == "--list" {
		fmt.Println(strings.Join(names(), "\n"))
		return
	}
	program, ok := programs[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "kube: no program %q; run one of %v as `kube NAME ...` or through a symlink named NAME\n", name, names())
		os.Exit(2)
	}
	os.Exit(program())
}

// names lists the programs, sorted: for `kube --list`, which the build uses to make the symlinks.
func names() []string {
	list := make([]string, 0, len(programs))
	for name := range programs {
		list = append(list, name)
	}
	sort.Strings(list)
	return list
}
