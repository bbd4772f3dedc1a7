package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"installer.dev/installer/pkg/phases"
	"installer.dev/installer/pkg/ssh"
)

// createCluster runs the create workflow, or with dryRun (plan) records and prints what it would do.
func (a *app) createCluster(ctx context.Context, dryRun bool) error {
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	command := "create cluster"
	if dryRun {
		command = "plan"
	}
	s, err := a.startSession(ctx, ls, command, nil, nil, dryRun, true)
	if err != nil {
		return err
	}
	defer s.Close()
	err = a.execute(ctx, s, phases.CreateCluster())
	if dryRun {
		printPlan(a.streams.Out, s.Run.Planned(), a.global.Verbose > 0, err)
		return err
	}
	if err == nil {
		fmt.Fprintf(a.streams.Err, "cluster %s is ready; admin kubeconfig: %s\n", ls.Cluster.Metadata.Name, ls.StateDir.AdminConf())
	}
	return err
}

// incompletePlan heads the plan of a dry run that failed.
const incompletePlan = "incomplete plan: the dry run stopped at an error (on stderr); what it recorded before:"

// printPlan lists, per host and phase, every upload (path, mode, checksum; the masked content with
// verbose) and command a dry run recorded. After a failed dry run (runErr) what was recorded is
// marked incomplete, and nothing recorded says nothing: the run has not shown the hosts converged.
func printPlan(w io.Writer, planned []phases.PlannedAction, verbose bool, runErr error) {
	if len(planned) == 0 {
		if runErr == nil {
			fmt.Fprintln(w, "nothing to do: every host is converged")
		}
		return
	}
	if runErr != nil {
		fmt.Fprintln(w, incompletePlan)
	}
	byHost := map[string][]phases.PlannedAction{}
	var order []string
	for _, p := range planned {
		if _, ok := byHost[p.Host]; !ok {
			order = append(order, p.Host)
		}
		byHost[p.Host] = append(byHost[p.Host], p)
	}
	for _, host := range order {
		if host == phases.LocalHost {
			fmt.Fprintln(w, "state directory:")
		} else {
			fmt.Fprintf(w, "host %s:\n", host)
		}
		phase := ""
		for _, p := range byHost[host] {
			if p.Phase != phase {
				phase = p.Phase
				fmt.Fprintf(w, "  phase %s:\n", phase)
			}
			if p.File != nil && p.Command == "" {
				// A secret file's hash is not shown: a short secret in a known template could be
				// recovered from it.
				sum := "sha256 " + p.File.SHA256[:16]
				if p.File.Sensitive {
					sum = "(secret, shown masked)"
				}
				fmt.Fprintf(w, "    upload %s mode %04o %s\n", p.File.Path, p.File.Mode, sum)
			} else {
				fmt.Fprintf(w, "    run    %s\n", p.Command)
			}
			if verbose && p.File != nil {
				// kubeadm.yaml's placeholder token (kubeadm's documentation example, kept in render's
				// files so kubeadm validates them) shows as <redacted> here: secret scanners flag it.
				display := ssh.Redact(string(p.File.Display), nil)
				for _, l := range strings.Split(strings.TrimRight(display, "\n"), "\n") {
					fmt.Fprintf(w, "           | %s\n", l)
				}
			}
		}
	}
}

// joinNode joins the named hosts; the first control plane is read from, never changed.
func (a *app) joinNode(ctx context.Context, ls *loadedSpec, hosts []string) error {
	var readOnly []string
	if cps := ls.Cluster.Spec.ControlPlanes(); len(cps) > 0 {
		readOnly = []string{cps[0].Name}
	}
	s, err := a.startSession(ctx, ls, "join node", hosts, readOnly, false, false)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := a.execute(ctx, s, phases.JoinNode()); err != nil {
		return err
	}
	var joined []string
	for _, h := range s.Run.Targets() {
		joined = append(joined, h.Name())
	}
	if len(joined) > 0 {
		fmt.Fprintf(a.streams.Err, "joined %s\n", strings.Join(joined, ", "))
	}
	if settled := s.Run.Settled(); len(settled) > 0 {
		fmt.Fprintf(a.streams.Err, "nodes of this cluster already, left untouched: %s\n", strings.Join(settled, ", "))
	}
	return nil
}
