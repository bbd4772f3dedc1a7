package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases"
)

// resetOptions are the reset command's flags.
type resetOptions struct {
	hosts        []string
	yes          bool
	dryRun       bool
	force        bool
	drainTimeout time.Duration
}

func (a *app) newResetCommand() *cobra.Command {
	var o resetOptions
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Remove Kubernetes from hosts and leave them clean and reusable",
		Long: `Without --host, resets the whole cluster (workers first, then control planes, the first control plane
last); with --host, only those nodes. Nodes that leave a cluster which stays are cordoned, drained
(PodDisruptionBudgets are honoured until --drain-timeout) and deleted, and a control plane's etcd
member is checked and removed from a control plane that stays. On each host kubeadm reset runs, then
what it leaves behind is removed: the CNI's configuration, state, interfaces and routes, only
kube-proxy's, the kubelet's and the CNI's firewall rules (KUBE-*, FLANNEL-*, CNI-* chains and their
nftables tables; the host's own rules stay), /etc/kubernetes, /var/lib/etcd, /var/lib/kubelet; the
kubelet is stopped and disabled. containerd, the binaries and cached images stay: create cluster or
join node can use the host again.

It asks for confirmation on a terminal unless --yes, and refuses without a terminal and without
--yes. It refuses to reset the last control plane while other hosts are still nodes, unless the
whole cluster is reset. With the whole cluster, hosts that cannot be reached are reported and the
others reset (exit code 4).`,
		Example: `  installer reset -f cluster.yaml --host w2
  installer reset -f cluster.yaml --yes
  installer reset -f cluster.yaml --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.reset(cmd.Context(), o)
		},
	}
	cmd.Flags().StringSliceVar(&o.hosts, "host", nil, "reset only this host (repeatable)")
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "list what would be removed; change nothing")
	cmd.Flags().BoolVar(&o.force, "force", false, "also delete pods no controller manages while draining")
	cmd.Flags().DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Minute, "how long each node's drain may wait for PodDisruptionBudgets")
	return cmd
}

func (a *app) reset(ctx context.Context, o resetOptions) error {
	if o.drainTimeout <= 0 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--drain-timeout %s: must be positive", o.drainTimeout))
	}
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	if err := checkHostNames(ls.Cluster, o.hosts); err != nil {
		return err
	}
	if !o.dryRun && !o.yes {
		if err := a.confirmReset(ls.Cluster, o.hosts); err != nil {
			return err
		}
	}
	command := runName("reset", o.dryRun)
	var readOnly []string
	if len(o.hosts) > 0 {
		// The other control planes stay: one of them reaches the cluster API and etcd.
		for _, cp := range ls.Cluster.Spec.ControlPlanes() {
			readOnly = append(readOnly, cp.Name)
		}
	}
	s, err := a.startSession(ctx, ls, command, o.hosts, readOnly, o.dryRun, false)
	if err != nil {
		return err
	}
	defer s.Close()
	err = a.execute(ctx, s, phases.Reset(phases.ResetOptions{DrainTimeout: o.drainTimeout, Force: o.force}))
	if o.dryRun {
		printPlan(a.streams.Out, s.Run.Planned(), a.global.Verbose > 0, err)
		return err
	}
	if err == nil {
		fmt.Fprintf(a.streams.Err, "reset %s; the hosts can be used by create cluster or join node again\n", describeTargets(ls.Cluster, o.hosts))
	}
	return err
}

// describeTargets names what a reset acts on, for the prompt and the closing line.
func describeTargets(c *v1alpha1.Cluster, names []string) string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var list []string
	for _, h := range c.Spec.Hosts {
		if len(want) == 0 || want[h.Name] {
			list = append(list, fmt.Sprintf("%s (%s, %s)", h.Name, h.Role, h.Address))
		}
	}
	what := "hosts"
	if len(want) == 0 {
		what = "the whole cluster " + c.Metadata.Name + ":"
	}
	return what + " " + strings.Join(list, ", ")
}

// confirmReset asks on a terminal; without one it refuses rather than wait for an answer that
// cannot come.
func (a *app) confirmReset(c *v1alpha1.Cluster, names []string) error {
	return a.confirmOnTerminal("reset", fmt.Sprintf("This removes Kubernetes and its data from %s.\nWorkloads on them stop; etcd data on reset control planes is deleted.", describeTargets(c, names)))
}

// confirmOnTerminal asks the user on the terminal to confirm what command is about to do; without
// a terminal to ask on it refuses (the command's --yes skips the question).
func (a *app) confirmOnTerminal(command, what string) error {
	f, ok := a.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("%s needs confirmation: run it on a terminal, or pass --yes; nothing was changed", command))
	}
	return confirm(a.streams.In, a.streams.Err, what)
}

// confirm prints what is about to happen and accepts only "yes".
func confirm(in io.Reader, out io.Writer, what string) error {
	fmt.Fprintf(out, "%s Type \"yes\" to continue: ", what)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("no answer: %w; nothing was changed", err))
	}
	if strings.TrimSpace(line) != "yes" {
		return exitcode.New(exitcode.InvalidInput, errors.New("not confirmed; nothing was changed"))
	}
	return nil
}
