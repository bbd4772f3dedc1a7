package main

import (
	"github.com/spf13/cobra"
)

func (a *app) newResetCommand() *cobra.Command {
	var (
		hosts  []string
		yes    bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Remove Kubernetes from hosts and leave them clean and reusable",
		Long: `Without --host, resets the whole cluster (workers first, then control planes); with --host, only those
nodes. While the cluster is reachable each node is drained and deleted, and a control plane's etcd
member removed. Then kubeadm reset runs on the host and what it leaves behind is removed: CNI
configuration and interfaces, kube-proxy's and the CNI's firewall rules, /etc/kubernetes,
/var/lib/etcd, /var/lib/kubelet; the kubelet is stopped and disabled. Asks for confirmation on a
terminal unless --yes.`,
		Example: `  installer reset -f cluster.yaml --host w2
  installer reset -f cluster.yaml --yes
  installer reset -f cluster.yaml --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ls, err := a.loadSpecForHosts()
			if err != nil {
				return err
			}
			if err := checkHostNames(ls.Cluster, hosts); err != nil {
				return err
			}
			return errNotImplemented("reset")
		},
	}
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "reset only this host (repeatable)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed; change nothing")
	return cmd
}
