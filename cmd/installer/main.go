// Command installer turns a handful of Linux hosts into a Kubernetes cluster over SSH by wrapping
// kubeadm. This package holds the cobra commands only; the work lives in pkg/.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, systemEnv())
	stop()
	os.Exit(code)
}
