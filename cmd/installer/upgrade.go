package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/versions"
)

func (a *app) newUpgradeCommand() *cobra.Command {
	var (
		to             string
		dryRun         bool
		maxUnavailable int
		force          bool
	)
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade the cluster one minor version at a time",
		Long: `Upgrades the cluster to the spec's kubernetesVersion (or --to): checks cluster health, takes an etcd
snapshot into the state directory and verifies it, runs kubeadm upgrade apply on the first control
plane and kubeadm upgrade node on the others one at a time, then drains, upgrades and uncordons every
node (workers in batches of --max-unavailable). It refuses downgrades and never skips a minor version;
it prints the chain of steps instead. A re-run after a failure continues where it stopped.

Supported versions: ` + versions.SupportedList() + `.`,
		Example: `  installer upgrade -f cluster.yaml --dry-run
  installer upgrade -f cluster.yaml --to v1.35.8 --max-unavailable 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to != "" {
				if _, ok := versions.Lookup(to); !ok {
					return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--to %s: not a supported version (%s)", to, versions.SupportedList()))
				}
			}
			if maxUnavailable < 1 {
				return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--max-unavailable %d: must be at least 1", maxUnavailable))
			}
			if _, err := a.loadSpecForHosts(); err != nil {
				return err
			}
			return errNotImplemented("upgrade")
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target version (default: the spec's kubernetesVersion)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the upgrade plan per node; change nothing")
	cmd.Flags().IntVar(&maxUnavailable, "max-unavailable", 1, "workers drained and upgraded at once")
	cmd.Flags().BoolVar(&force, "force", false, "also evict pods that no controller manages while draining")
	return cmd
}
