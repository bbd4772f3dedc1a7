package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	certs.AddCommand(check)
	return certs
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
