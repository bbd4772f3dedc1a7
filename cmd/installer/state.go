package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases"
)

func (a *app) newStateCommand() *cobra.Command {
	st := &cobra.Command{
		Use:   "state",
		Short: "The local state directory",
		Args:  cobra.NoArgs,
	}
	var dryRun bool
	recover := &cobra.Command{
		Use:   "recover",
		Short: "Rebuild a lost state directory from the running cluster",
		Long: `Rebuilds the state directory of a running cluster over SSH: the CAs and the service-account keys
from the first reachable control plane that holds them (written only once every other reachable host
is found to hold the same), keepalived's VRRP password from the control planes' keepalived.conf
(loadBalancer keepalived-haproxy; they must agree) and the admin kubeconfig. Hosts that cannot be
reached are left out and named. Anything the state directory already holds is kept when it is the
cluster's and refused when not: nothing in it is replaced. etcd snapshots and run logs cannot be
recovered. Afterwards every command proves the hosts against the recovered PKI as usual, and create
on a converged cluster changes nothing.`,
		Example: `  installer state recover -f cluster.yaml
  installer state recover -f cluster.yaml --state-dir ./new-state --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.stateRecover(cmd.Context(), dryRun)
		},
	}
	recover.Flags().BoolVar(&dryRun, "dry-run", false, "read the hosts and show what would be written, writing nothing")
	st.AddCommand(recover)
	return st
}

func (a *app) stateRecover(ctx context.Context, dryRun bool) error {
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	s, err := a.startSession(ctx, ls, runName("state-recover", dryRun), nil, nil, dryRun, false)
	if err != nil {
		return err
	}
	defer s.Close()
	var (
		unreachable []string
		report      phases.RecoverReport
	)
	err = a.execute(ctx, s, []phases.Phase{phases.ConnectReachable{Unreachable: &unreachable}, phases.GatherFacts{},
		phases.StateRecover{Secrets: s.local, Report: &report}, phases.ClusterIdentity{Policy: phases.PKIRequired}})
	if dryRun {
		printPlan(a.streams.Out, s.Run.Planned(), a.global.Verbose > 0, err)
	}
	if err != nil {
		return err
	}
	out := a.streams.Out
	verb := "recovered"
	if dryRun {
		verb = "would recover"
	}
	fmt.Fprintf(out, "%s the state directory %s from %s\n", verb, ls.StateDir, report.Source)
	for _, p := range report.Written {
		fmt.Fprintf(out, "  written: %s\n", p)
	}
	for _, p := range report.Kept {
		fmt.Fprintf(out, "  already there and the cluster's: %s\n", p)
	}
	fmt.Fprintf(out, "  admin kubeconfig: %s (from %s)\n", report.AdminKubeconfig, report.Source)
	if len(report.Agreeing) > 0 {
		fmt.Fprintf(out, "  hold the same PKI: %s\n", strings.Join(report.Agreeing, ", "))
	}
	if len(report.Empty) > 0 {
		fmt.Fprintf(out, "  hold no cluster yet: %s\n", strings.Join(report.Empty, ", "))
	}
	if len(unreachable) > 0 {
		// The state directory is whole, but these hosts were not compared with it.
		return exitcode.New(exitcode.Unreachable, fmt.Errorf("not reached, so not compared with the recovered PKI: %s; the next command that connects to them compares them", strings.Join(unreachable, ", ")))
	}
	return nil
}
