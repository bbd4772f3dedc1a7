// Command lab drives the installer's offline lab: building components (lab build), serving the binary
// mirror and image registry (lab mirror serve), and the lab hosts. Each subcommand lives in its own
// file and is registered below with one line.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "lab",
		Short:         "The installer's offline lab",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newBuildCmd())
	root.AddCommand(newMirrorCmd())
	root.AddCommand(newUpCmd())
	root.AddCommand(newDownCmd())
	root.AddCommand(newStatusCmd())
	root.AddCommand(newSSHCmd())
	root.AddCommand(newHostsCmd())
	root.AddCommand(newConformanceCmd())
	return root
}
