package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases"
)

type applyOptions struct {
	dryRun, yes, skipUnreachable bool
	timeout                      time.Duration
}

func (a *app) newApplyCommand() *cobra.Command {
	var o applyOptions
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Change a running cluster to match the spec, one control plane and one node at a time",
		Long: `Reads the running cluster (kubeadm's stored configuration, every control plane's static pods and
apiserver certificate, every node's kubelet configuration, containerd files, labels and taints),
prints what differs from the spec host by host with what each change costs, then makes the changes:
new apiserver certificate names and control-plane flags the kubeadm way, one control plane at a time
(out of the API's load balancer while its apiserver restarts); the kubelet configuration and
containerd's files node by node; labels and taints through the API; then workers of the spec that
are not nodes yet are joined. Each control plane and node is checked before the next (the processes
run the new flags, the apiserver serves the new certificate and is ready, the kubelet reports the new
settings, the node is Ready).

Hosts of the spec that are not nodes join (control planes too); hosts marked remove: true are taken
out (drained, reset, their etcd member and Node removed, one control plane at a time while etcd stays
healthy); then every control plane's haproxy balances the control planes as they now are.

Changes apply does not make (the Kubernetes version, the pod or service network, the endpoint, a
node's role) are refused before anything runs. Without a terminal to confirm on, --yes is
needed. --dry-run prints the differences and the commands apply would run. A re-run after a failure
continues; a run on a cluster that matches the spec prints "no changes".`,
		Example: `  installer apply -f cluster.yaml --dry-run
  installer apply -f cluster.yaml --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.timeout <= 0 {
				return exitcode.New(exitcode.InvalidInput, errors.New("--timeout must be positive"))
			}
			return a.apply(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print what differs and what apply would run; change nothing")
	cmd.Flags().BoolVar(&o.yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&o.skipUnreachable, "skip-unreachable", false, "leave out the hosts that cannot be reached, change the others, and exit 4 naming them (without it, an unreachable host stops apply before any change)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Minute, "how long each wait (a restarted component, a ready apiserver, a node's kubelet) may take")
	return cmd
}

func (a *app) apply(ctx context.Context, o applyOptions) error {
	ls, err := a.loadSpecForApply()
	if err != nil {
		return err
	}
	// The run works on the cluster as it must become; the hosts marked remove are reached through
	// the spec as written.
	written := ls.Cluster
	var marked *v1alpha1.Cluster
	if len(written.Spec.Removing()) > 0 {
		marked = written
		ls.Cluster = written.WithoutRemoved()
	}
	s, err := a.startSession(ctx, ls, runName("apply", o.dryRun), nil, nil, o.dryRun, false)
	if err != nil {
		return err
	}
	defer s.Close()
	diff := &phases.ApplyDiff{}
	var connect phases.Phase = phases.Connect{}
	if o.skipUnreachable {
		connect = phases.ConnectReachable{Unreachable: &diff.Skipped}
	}
	observe := []phases.Phase{connect, phases.GatherFacts{}, phases.ClusterIdentity{Policy: phases.PKIRequired},
		phases.ApplyLeftovers{Options: phases.ApplyOptions{Timeout: o.timeout}}, phases.ApplyObserve{Diff: diff, Spec: marked}}
	if _, err := phases.Execute(ctx, s.Run, observe); err != nil {
		return err
	}
	if len(diff.Skipped) > 0 {
		fmt.Fprintf(a.streams.Out, "not reached, left out (--skip-unreachable): %s\n", strings.Join(diff.Skipped, ", "))
	}
	printDiff(a.streams.Out, diff)
	if len(diff.Refusals) > 0 {
		var b strings.Builder
		for _, r := range diff.Refusals {
			fmt.Fprintf(&b, "\n  %s", r)
		}
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("apply does not make these changes; nothing was changed:%s", b.String()))
	}
	if diff.Empty() {
		return skippedError(diff)
	}
	reconcile := phases.ApplyCluster(diff, phases.ApplyOptions{Timeout: o.timeout})
	if o.dryRun {
		err := a.execute(ctx, s, reconcile)
		fmt.Fprintln(a.streams.Out, "\nwhat apply would run:")
		printPlan(a.streams.Out, s.Run.Planned(), a.global.Verbose > 0, err)
		if err == nil {
			err = skippedError(diff)
		}
		return err
	}
	if !o.yes {
		if err := a.confirmOnTerminal("apply", fmt.Sprintf("apply makes the %d changes above to cluster %s.", len(diff.Changes), ls.Cluster.Metadata.Name)); err != nil {
			return err
		}
	}
	if err := a.execute(ctx, s, reconcile); err != nil {
		return err
	}
	if len(diff.Skipped) > 0 {
		fmt.Fprintf(a.streams.Err, "cluster %s: %d changes made on the hosts reached\n", ls.Cluster.Metadata.Name, len(diff.Changes))
		return skippedError(diff)
	}
	fmt.Fprintf(a.streams.Err, "cluster %s matches the spec: %d changes made\n", ls.Cluster.Metadata.Name, len(diff.Changes))
	return nil
}

// skippedError is the end of a run that left hosts out: exit 4, naming them.
func skippedError(d *phases.ApplyDiff) error {
	if len(d.Skipped) == 0 {
		return nil
	}
	return exitcode.New(exitcode.Unreachable, fmt.Errorf("not reached, so neither compared nor changed: %s; run apply again once they answer", strings.Join(d.Skipped, ", ")))
}

// printDiff prints what apply found, cluster-wide first, then host by host: each component's
// differences, one per line, under what changing it costs.
func printDiff(w io.Writer, d *phases.ApplyDiff) {
	if d.Empty() {
		switch {
		case len(d.Refusals) > 0:
		case len(d.Skipped) > 0:
			fmt.Fprintln(w, "no changes on the hosts reached")
		default:
			fmt.Fprintln(w, "no changes: the cluster matches the spec")
		}
		return
	}
	host := "-"
	for _, c := range d.Changes {
		if c.Host != host {
			host = c.Host
			if host == "" {
				fmt.Fprintln(w, "cluster:")
			} else {
				fmt.Fprintf(w, "host %s:\n", host)
			}
		}
		fmt.Fprintf(w, "  %s: %s\n", c.Component, c.Cost)
		for _, l := range c.Lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	fmt.Fprintf(w, "%d changes\n", len(d.Changes))
}
