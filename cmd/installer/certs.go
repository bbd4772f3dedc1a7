package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases"
	"installer.dev/installer/pkg/pki"
)

func (a *app) newCertsCommand() *cobra.Command {
	certs := &cobra.Command{
		Use:   "certs",
		Short: "Certificates of the cluster's hosts",
		Args:  cobra.NoArgs,
	}
	var (
		warnDays int
		output   string
	)
	check := &cobra.Command{
		Use:   "check",
		Short: "Report when every certificate of every host expires, and which CA signed it",
		Long: `Reads, over SSH and never a private key, kubeadm's certificates and the kubeconfigs' client
certificates on every control plane and the kubelet's client certificate on every node, and prints
when each expires, the days left and the CA of the state directory's PKI that signed it (a certificate
no CA of this cluster signed is reported as such). Changes nothing. Exits 1 when a certificate expires
within --warn-days, has expired, cannot be read, or is not this cluster's.`,
		Example: `  installer certs check -f cluster.yaml
  installer certs check -f cluster.yaml --warn-days 60 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.certsCheck(cmd.Context(), warnDays, output)
		},
	}
	check.Flags().IntVar(&warnDays, "warn-days", 30, "report certificates that expire within this many days")
	check.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	var (
		hosts   []string
		dryRun  bool
		timeout time.Duration
	)
	renew := &cobra.Command{
		Use:   "renew",
		Short: "Renew the control planes' certificates and kubeconfigs, one control plane at a time",
		Long: `Renews every certificate and kubeconfig kubeadm made on each control plane (kubeadm certs renew all:
same subjects and SANs, signed by the cluster's CAs, which are never changed), one control plane at a
time: with loadBalancer keepalived-haproxy and several control planes it is first taken out of the
API's load balancer (the VIP holder goes last), then etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kube-vip are restarted so that they read the new files, etcd's and the apiserver's
served certificates are checked to be the renewed ones, and the next control plane waits for /readyz
and every etcd member healthy. The state directory's admin kubeconfig is refreshed at the end.
With a single control plane the API is down while its etcd and apiserver restart. The kubelets'
client certificates rotate by themselves and are not touched.`,
		Example: `  installer certs renew -f cluster.yaml
  installer certs renew -f cluster.yaml --host cp2 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.certsRenew(cmd.Context(), hosts, dryRun, timeout)
		},
	}
	renew.Flags().StringSliceVar(&hosts, "host", nil, "renew only this control plane (repeatable)")
	renew.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	renew.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "bound on each wait: a restarted container, the apiserver ready, etcd healthy")
	certs.AddCommand(check, renew)
	return certs
}

func (a *app) certsRenew(ctx context.Context, hosts []string, dryRun bool, timeout time.Duration) error {
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	if err := checkHostNames(ls.Cluster, hosts); err != nil {
		return err
	}
	var cps []string
	for _, h := range ls.Cluster.Spec.ControlPlanes() {
		cps = append(cps, h.Name)
	}
	for _, h := range hosts {
		if !slices.Contains(cps, h) {
			return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--host %s: not a control plane (control planes: %s); a kubelet rotates its own client certificate", h, strings.Join(cps, ", ")))
		}
	}
	s, err := a.startSession(ctx, ls, runName("certs-renew", dryRun), cps, nil, dryRun, false)
	if err != nil {
		return err
	}
	defer s.Close()
	var report []phases.RenewedHost
	err = a.execute(ctx, s, []phases.Phase{phases.Connect{}, phases.GatherFacts{}, phases.ClusterIdentity{Policy: phases.PKIRequired},
		phases.CertsRenew{Only: hosts, Timeout: timeout, Report: &report}})
	if dryRun {
		printPlan(a.streams.Out, s.Run.Planned(), a.global.Verbose > 0, err)
		return err
	}
	if err != nil {
		return err
	}
	for _, h := range report {
		var served []string
		for _, addr := range slices.Sorted(maps.Keys(h.Served)) {
			served = append(served, fmt.Sprintf("%s until %s", addr, h.Served[addr].NotAfter.UTC().Format(time.RFC3339)))
		}
		fmt.Fprintf(a.streams.Out, "%s: renewed; %d containers restarted; serving %s\n", h.Host, len(h.Restarted), strings.Join(served, ", "))
	}
	return nil
}

// certFinding is one line of `certs check -o json`.
type certFinding struct {
	Host     string `json:"host"`
	Path     string `json:"path"`
	Subject  string `json:"subject,omitempty"`
	CA       string `json:"ca,omitempty"`
	NotAfter string `json:"notAfter,omitempty"`
	DaysLeft int    `json:"daysLeft"`
	Status   string `json:"status"`
	Problem  string `json:"problem,omitempty"`
}

func (a *app) certsCheck(ctx context.Context, warnDays int, output string) error {
	if output != "table" && output != "json" {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--output %q: want table or json", output))
	}
	if warnDays < 0 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--warn-days %d: must not be negative", warnDays))
	}
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	s, err := a.startSession(ctx, ls, "certs-check", nil, nil, false, false)
	if err != nil {
		return err
	}
	defer s.Close()
	var report []pki.Finding
	err = a.execute(ctx, s, []phases.Phase{phases.Connect{}, phases.GatherFacts{}, phases.ClusterIdentity{Policy: phases.PKIIfPresent},
		phases.CertsCheck{Warn: time.Duration(warnDays) * 24 * time.Hour, Report: &report}})
	if err != nil {
		return err
	}
	bad := 0
	lines := make([]certFinding, 0, len(report))
	for _, f := range report {
		l := certFinding{Host: f.Host, Path: f.Path, Subject: f.Subject, CA: f.CA, Status: string(f.Status), Problem: f.Problem}
		if f.Status != pki.StatusInvalid {
			l.NotAfter = f.NotAfter.UTC().Format(time.RFC3339)
			l.DaysLeft = int(f.Remaining.Hours() / 24)
		}
		if f.Status != pki.StatusOK {
			bad++
		}
		lines = append(lines, l)
	}
	if output == "json" {
		enc := json.NewEncoder(a.streams.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(lines); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(a.streams.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "HOST\tFILE\tSUBJECT\tCA\tEXPIRES\tDAYS\tSTATUS")
		for _, l := range lines {
			expires, days := "-", "-"
			if l.NotAfter != "" {
				expires, days = l.NotAfter, fmt.Sprint(l.DaysLeft)
			}
			status := l.Status
			if l.Problem != "" {
				status += ": " + l.Problem
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Host, l.Path, l.Subject, l.CA, expires, days, status)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if bad > 0 {
		return exitcode.New(exitcode.Failure, fmt.Errorf("%d of %d certificates expire within %d days, have expired, cannot be read or are not this cluster's; renew them (kubeadm certs renew on each control plane) or check the host", bad, len(report), warnDays))
	}
	return nil
}
