// Command pause is the sandbox ("pause") container of every pod on the local cluster: it holds the
// pod's namespaces open, reaps the zombies of processes that share its PID namespace, and exits
// when the runtime stops the sandbox. It does what the upstream pause image's C program does;
// built static, it is the image's only file, so the cluster needs no registry for it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for received := range signals {
		if received != syscall.SIGCHLD {
			os.Exit(0)
		}
		reapChildren()
	}
}

// reapChildren collects every exited child: SIGCHLD is not queued, so one signal may stand for many.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
