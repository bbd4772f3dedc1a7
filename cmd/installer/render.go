package main

import (
	"github.com/spf13/cobra"
)

func (a *app) newRenderCommand() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "render -o DIR",
		Short: "Write every file the installer would put on each host, offline",
		Long: `Works from the spec alone (host facts are assumed from the spec and defaults; plan uses real facts) and
touches no host. Writes DIR/hosts/<host>/kubeadm.yaml (kubeadm's documents for that host),
DIR/hosts/<host>/rootfs/<path> (every other file at its real path on the host) and DIR/cluster/
(what is applied to the cluster). Loads or generates the PKI in the state directory. Secrets are
masked: the bootstrap token shows as abcdef.0123456789abcdef, passwords and keys as <redacted>.`,
		Example: `  installer render -f cluster.yaml -o out/`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.loadSpec(); err != nil {
				return err
			}
			return errNotImplemented("render")
		},
	}
	cmd.Flags().StringVarP(&outDir, "output", "o", "", "output directory")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}
