package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"installer.dev/installer/lab/hosts"
)

// openLab opens the lab state directory: --lab-dir, else .lab at the repository root (the directory
// holding go.mod, searched upwards from the working directory).
func openLab(cmd *cobra.Command) (*hosts.Lab, error) {
	dir, _ := cmd.Flags().GetString("lab-dir")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, ".lab")
	}
	var hook hosts.MirrorHook = processMirror{}
	if noMirror, _ := cmd.Flags().GetBool("no-mirror"); noMirror {
		hook = nil
	}
	return hosts.New(hosts.Options{Dir: dir, Log: cmd.ErrOrStderr(), Mirror: hook})
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the repository (no go.mod above the working directory); use --lab-dir")
		}
		dir = parent
	}
}

func addLabDirFlag(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().String("lab-dir", "", "lab state directory (default: .lab at the repository root)")
	return cmd
}

func newUpCmd() *cobra.Command {
	var topo hosts.Topology
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the lab hosts, the apt cache (and mirror), and write .lab/cluster.yaml",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			t0 := time.Now()
			st, err := l.Up(cmd.Context(), topo)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tADDRESS\tPRIVATE")
			for _, h := range st.Hosts {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.Name, h.Role, h.Address, h.PrivateAddress)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab up in %s; spec: %s (installer --state-dir %s)\n",
				time.Since(t0).Round(time.Millisecond), l.SpecFile(), l.StateDir())
			return nil
		},
	}
	cmd.Flags().IntVarP(&topo.Hosts, "hosts", "n", 3, "number of hosts")
	cmd.Flags().IntVar(&topo.ControlPlanes, "control-planes", 1, "how many of them are control planes")
	cmd.Flags().StringVar(&topo.LoadBalancer, "lb", "none", "API load balancer: none, keepalived-haproxy, kube-vip")
	cmd.Flags().StringVar(&topo.Install, "install", "", "install source written to the spec: package, binary, bundle")
	cmd.Flags().StringVar(&topo.KubernetesVersion, "kubernetes-version", "", "spec's kubernetesVersion (default: the newest supported)")
	cmd.Flags().Bool("no-mirror", false, "hosts and apt cache only: no binary mirror, registry or lab CCM")
	return addLabDirFlag(cmd)
}

func newDownCmd() *cobra.Command {
	return addLabDirFlag(&cobra.Command{
		Use:   "down",
		Short: "Remove everything the lab started and restore the machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			return l.Down(cmd.Context())
		},
	})
}

func newStatusCmd() *cobra.Command {
	return addLabDirFlag(&cobra.Command{
		Use:   "status",
		Short: "Show the lab's hosts and servers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			st, hs, err := l.Status(cmd.Context())
			if errors.Is(err, os.ErrNotExist) {
				fmt.Fprintln(cmd.OutOrStdout(), "no lab is up")
				return nil
			}
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tADDRESS\tPRIVATE\tSTATE\tNETWORK")
			for _, h := range hs {
				netState := "connected"
				if h.Cut {
					netState = "cut"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Role, h.Address, h.PrivateAddress, h.State, netState)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "apt cache: %s (pid %d)\n", st.AptCacheURL, st.AptCachePID)
			if st.MirrorURL != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "mirror: %s (binary mirror and registry)\n", st.MirrorURL)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "spec: %s\n", l.SpecFile())
			return nil
		},
	})
}

func newSSHCmd() *cobra.Command {
	return addLabDirFlag(&cobra.Command{
		Use:   "ssh NAME [command...]",
		Short: "Log in to a lab host as the lab user (OpenSSH, strict host key checking)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := openLab(cmd)
			if err != nil {
				return err
			}
			c, err := l.SSHCommand(context.WithoutCancel(cmd.Context()), args[0], args[1:]...)
			if err != nil {
				return err
			}
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
			if err := c.Run(); err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					os.Exit(exit.ExitCode()) // the remote command's status is ours
				}
				return err
			}
			return nil
		},
	})
}

func newHostsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hosts", Short: "Fault controls for single hosts"}
	for _, a := range []struct {
		use, short string
		run        func(*hosts.Lab, context.Context, string) error
	}{
		{"stop", "Clean shutdown (kubelet stopped, pods removed, then the host stops)", (*hosts.Lab).Stop},
		{"start", "Boot a stopped or killed host and wait for SSH", (*hosts.Lab).Start},
		{"kill", "Power loss: SIGKILL the host", (*hosts.Lab).Kill},
		{"cut", "Drop all of the host's network traffic", (*hosts.Lab).Cut},
		{"heal", "Restore the host's network traffic", (*hosts.Lab).Heal},
	} {
		cmd.AddCommand(addLabDirFlag(&cobra.Command{
			Use:   a.use + " NAME",
			Short: a.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				l, err := openLab(cmd)
				if err != nil {
					return err
				}
				return a.run(l, cmd.Context(), args[0])
			},
		}))
	}
	return cmd
}
