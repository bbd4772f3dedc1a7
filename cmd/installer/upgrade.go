package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases"
	"installer.dev/installer/pkg/versions"
)

// upgradeOptions are the flags of `installer upgrade`.
type upgradeOptions struct {
	to     string
	dryRun bool
	phases.UpgradeOptions
}

func (a *app) newUpgradeCommand() *cobra.Command {
	var o upgradeOptions
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade the cluster one minor version at a time",
		Long: `Upgrades the cluster to the spec's kubernetesVersion (or --to): checks cluster health, takes an etcd
snapshot into the state directory and verifies it, runs kubeadm upgrade apply on the first control
plane and kubeadm upgrade node on the others one at a time, then drains, upgrades and uncordons every
node (workers in batches of --max-unavailable). It refuses downgrades and never skips a minor version;
it prints the chain of steps instead. A re-run after a failure continues where it stopped; a run on a
cluster at the target does nothing.

Supported versions: ` + versions.SupportedList() + `.`,
		Example: `  installer upgrade -f cluster.yaml --dry-run
  installer upgrade -f cluster.yaml --to v1.35.8 --max-unavailable 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.to != "" {
				if _, ok := versions.Lookup(o.to); !ok {
					return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--to %s: not a supported version (%s)", o.to, versions.SupportedList()))
				}
			}
			if o.MaxUnavailable < 1 {
				return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--max-unavailable %d: must be at least 1", o.MaxUnavailable))
			}
			if o.DrainTimeout <= 0 || o.WaitTimeout <= 0 {
				return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--drain-timeout and --wait-timeout must be positive"))
			}
			return a.upgrade(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.to, "to", "", "target version (default: the spec's kubernetesVersion)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the upgrade plan per node; change nothing")
	cmd.Flags().IntVar(&o.MaxUnavailable, "max-unavailable", 1, "workers drained and upgraded at once")
	cmd.Flags().BoolVar(&o.Force, "force", false, "also delete pods that no controller manages while draining")
	cmd.Flags().DurationVar(&o.DrainTimeout, "drain-timeout", 5*time.Minute, "how long one node's drain may wait for PodDisruptionBudgets")
	cmd.Flags().DurationVar(&o.WaitTimeout, "wait-timeout", 5*time.Minute, "how long each wait for cluster health, a node's new version or its apiserver may take")
	return cmd
}

// upgrade runs the upgrade workflow, or with --dry-run prints what it would do per node.
func (a *app) upgrade(ctx context.Context, o upgradeOptions) error {
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	specVersion := ls.Cluster.Spec.KubernetesVersion
	if o.to != "" && o.to != specVersion {
		// Everything rendered for the hosts (kubelet files, packages, kubeadm's config) follows the target.
		ls.Cluster.Spec.KubernetesVersion = o.to
		fmt.Fprintf(a.streams.Err, "warning: upgrading to %s while %s says %s; set spec.kubernetesVersion to the version the cluster runs, or later create and join runs install %s\n",
			o.to, ls.Path, specVersion, specVersion)
	}
	command := runName("upgrade", o.dryRun)
	s, err := a.startSession(ctx, ls, command, nil, nil, o.dryRun, false)
	if err != nil {
		return err
	}
	defer s.Close()
	err = a.execute(ctx, s, phases.Upgrade(o.UpgradeOptions))
	if o.dryRun {
		printPlan(a.streams.Out, s.Run.Planned(), a.global.Verbose > 0, err)
		return err
	}
	if err == nil {
		fmt.Fprintf(a.streams.Err, "cluster %s runs %s\n", ls.Cluster.Metadata.Name, ls.Cluster.Spec.KubernetesVersion)
	}
	return err
}
