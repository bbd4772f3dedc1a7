package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/buildinfo"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/versions"
)

func (a *app) newCreateCommand() *cobra.Command {
	create := &cobra.Command{
		Use:   "create",
		Short: "Create resources (a cluster)",
	}
	var dryRun bool
	cluster := &cobra.Command{
		Use:   "cluster",
		Short: "Create the cluster the spec describes, or converge an existing one",
		Long: `Connects to every host, gathers facts, runs preflight checks, installs the container runtime and the
Kubernetes binaries, uploads the cluster PKI, runs kubeadm init on the first control plane, joins the
other control planes one at a time and the workers in parallel, deploys the pod network and the
cloud-controller-manager, waits for the nodes and CoreDNS, and writes the admin kubeconfig to the
state directory. Re-running it on a converged cluster changes nothing; after a failure it resumes.`,
		Example: `  installer create cluster -f cluster.yaml
  installer create cluster -f cluster.yaml --dry-run     # same as: installer plan`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.createCluster(cmd.Context(), dryRun)
		},
	}
	cluster.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be uploaded and run on each host; change nothing")
	create.AddCommand(cluster)
	return create
}

func (a *app) newJoinCommand() *cobra.Command {
	join := &cobra.Command{
		Use:   "join",
		Short: "Join resources (nodes) to the cluster",
	}
	var hosts []string
	node := &cobra.Command{
		Use:   "node --host NAME [--host NAME...]",
		Short: "Join hosts of the spec to the existing cluster as nodes",
		Long: `Adds the named hosts (already listed in the spec) to the running cluster: a fresh short-lived bootstrap
token on one control plane, then prepare, container runtime, binaries and kubeadm join on the named
hosts only. Existing nodes are not touched.`,
		Example: `  installer join node -f cluster.yaml --host w3
  installer join node -f cluster.yaml --host w3 --host w4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ls, err := a.loadSpecForHosts()
			if err != nil {
				return err
			}
			if err := checkHostNames(ls.Cluster, hosts); err != nil {
				return err
			}
			return a.joinNode(cmd.Context(), ls, hosts)
		},
	}
	node.Flags().StringSliceVar(&hosts, "host", nil, "name of a host in the spec to join (repeatable)")
	_ = node.MarkFlagRequired("host")
	join.AddCommand(node)
	return join
}

func (a *app) newValidateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the spec and the local files it names; touch no host",
		Long: `Decodes the spec strictly (unknown and duplicate fields are errors), applies defaults, validates every
field and checks the local files it names (SSH keys, known_hosts, CA files, the cloud config, the
bundle directory). Prints "valid", or every problem as "<field path>: <problem>" and exits 2.
It never opens a network connection.`,
		Example: `  installer validate -f cluster.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.loadSpec(); err != nil {
				return err
			}
			fmt.Fprintln(a.streams.Out, "valid")
			return nil
		},
	}
}

func (a *app) newPlanCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Show what create cluster would do on each host (same as create cluster --dry-run)",
		Long: `Connects read-only, gathers facts and prints per host and phase what would be uploaded (path, mode,
checksum; the content with -v) and run. Secrets are masked. Changes nothing on any host.`,
		Example: `  installer plan -f cluster.yaml
  installer plan -f cluster.yaml -v`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.createCluster(cmd.Context(), true)
		},
	}
}

func (a *app) newKubeconfigCommand() *cobra.Command {
	var merge bool
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the cluster's admin kubeconfig, or merge it into ~/.kube/config",
		Long: `Prints the admin kubeconfig from the state directory (fetching it from a control plane when it is not
there). With --merge it is added to ~/.kube/config as a new context instead.`,
		Example: `  installer kubeconfig -f cluster.yaml > admin.conf
  installer kubeconfig -f cluster.yaml --merge`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.kubeconfig(cmd.Context(), merge)
		},
	}
	cmd.Flags().BoolVar(&merge, "merge", false, "add the cluster to ~/.kube/config as a new context")
	return cmd
}

func (a *app) newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the installer's version and the Kubernetes versions it supports",
		Example: "  installer version\n  installer version -o json\n  installer version -o short",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			switch output {
			case "short":
				fmt.Fprintln(a.streams.Out, info.Version)
			case "json":
				out := struct {
					buildinfo.Info
					Kubernetes []string `json:"kubernetes"`
				}{info, strings.Split(versions.SupportedList(), ", ")}
				enc := json.NewEncoder(a.streams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			case "":
				fmt.Fprintf(a.streams.Out, "installer %s\n  commit:     %s\n  built:      %s\n  go:         %s %s\n  kubernetes: %s\n",
					info.Version, info.Commit, info.Date, info.GoVersion, info.Platform, versions.SupportedList())
			default:
				return exitcode.New(exitcode.InvalidInput, fmt.Errorf("-o %q: use short or json", output))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: short or json")
	return cmd
}

// checkHostNames verifies that every --host names a host of the spec.
func checkHostNames(c *v1alpha1.Cluster, names []string) error {
	var unknown []string
	for _, n := range names {
		if _, ok := c.Spec.Host(n); !ok {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		var known []string
		for _, h := range c.Spec.Hosts {
			known = append(known, h.Name)
		}
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--host %s: not in the spec (hosts: %s)", strings.Join(unknown, ", "), strings.Join(known, ", ")))
	}
	return nil
}
