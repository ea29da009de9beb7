// Command controlplane runs a real etcd or a real kube-apiserver for the
// project's tests and demo: `controlplane etcd <etcd flags>`,
// `controlplane kube-apiserver <kube-apiserver flags>`,
// `controlplane certs <dir>` to write the PKI they use, and
// `controlplane kubectl <args>`, a real kubectl for the demo and for people.
//
// One binary, two processes: a single link of the (large) shared dependency
// graph and a single up-to-date check, while the apiserver can still be stopped
// and restarted on the same port and data as etcd keeps running (outage tests).
//
// Either process exits by itself when its standard input closes, so a test
// runner killed with SIGKILL leaves nothing behind: the parent holds the write
// end of a pipe, and the kernel closes it when the parent dies.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// removeOnOrphanEnv names a directory the process deletes when it is orphaned
// (stdin closed): the harness sets it on etcd, the longest-lived process, so a
// SIGKILLed harness leaves no temp dir behind either.
const removeOnOrphanEnv = "CONTROLPLANE_REMOVE_ON_ORPHAN"

// exitWhenStdinCloses ends the process when stdin reaches EOF. The harness
// stops its children itself on a normal exit; EOF means it died without doing
// so, and then nothing is left to be graceful for.
func exitWhenStdinCloses() {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		if dir := os.Getenv(removeOnOrphanEnv); dir != "" {
			// The apiserver, orphaned at the same moment, may still be
			// closing files in dir: remove, give it a moment, remove again.
			for range 3 {
				_ = os.RemoveAll(dir)
				time.Sleep(200 * time.Millisecond)
			}
		}
		os.Exit(1)
	}()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: controlplane certs|etcd|kube-apiserver|kubectl [args]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "certs":
		runCerts(os.Args[2:])
	case "etcd":
		exitWhenStdinCloses()
		etcdmain.Main(append([]string{"etcd"}, os.Args[2:]...))
	case "kube-apiserver":
		exitWhenStdinCloses()
		command := app.NewAPIServerCommand()
		command.SetArgs(os.Args[2:])
		os.Exit(cli.Run(command))
	case "kubectl":
		// kubectl reads os.Args itself (plugins, verbosity).
		os.Args = os.Args[1:]
		if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
			util.CheckErr(err)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q: use certs, etcd, kube-apiserver or kubectl\n", os.Args[1])
		os.Exit(2)
	}
}
