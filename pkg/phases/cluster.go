package phases

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

// connectAPI connects to the cluster through the first control plane's local apiserver (the
// run's clusterAPI calls it once, on first use).
func (r *Run) connectAPI(ctx context.Context) (*kubeapi.Client, error) {
	cp, err := r.firstControlPlane()
	if err != nil {
		return nil, err
	}
	// Through the first control plane whose apiserver is ready: the first one's may be restarting
	// (a run interrupted while it was out of the load balancer).
	for _, s := range r.Cluster.Spec.ControlPlanes() {
		if h, ok := r.Hosts[s.Name]; ok && h.Connected() {
			if _, err := h.Query(ctx, ssh.Cmd{Args: localReadyz}); err == nil {
				return apiThrough(ctx, h)
			}
		}
	}
	return apiThrough(ctx, cp)
}

// apiThrough connects to the cluster API through a control plane's local apiserver.
func apiThrough(ctx context.Context, cp *Host) (*kubeapi.Client, error) {
	conf, err := cp.ReadFile(ctx, constants.AdminConf)
	if err != nil {
		return nil, fmt.Errorf("read admin.conf on %s: %w", cp.Name(), err)
	}
	return kubeapi.Connect(conf, cp.Runner().DialContext)
}

// client is the run's cluster API client, connected on first use.
func (r *Run) client(ctx context.Context) (*kubeapi.Client, error) { return r.api.get(ctx) }

// ApplyClusterFiles applies rendered add-ons (cni.yaml, ccm.yaml, addons/*) with server-side apply.
type ApplyClusterFiles struct {
	// Phase name and which rendered files it applies.
	PhaseName string
	Match     func(path string) bool
	// Skip, when it returns a reason, skips the phase (e.g. no cloud provider).
	Skip func(r *Run) string
}

func (a ApplyClusterFiles) Name() string { return a.PhaseName }

func (a ApplyClusterFiles) ShouldRun(r *Run) (bool, string) {
	if a.Skip != nil {
		if why := a.Skip(r); why != "" {
			return false, why
		}
	}
	return true, ""
}

func (a ApplyClusterFiles) Run(ctx context.Context, r *Run) error {
	files, err := manifests.ClusterFiles(&r.Cluster.Spec, r.Inputs)
	if err != nil {
		return err
	}
	var selected []manifests.File
	for _, f := range files {
		if a.Match(f.Path) {
			selected = append(selected, f)
		}
	}
	if len(selected) == 0 {
		return nil
	}
	for _, f := range selected {
		if _, err := r.fx.Apply(ctx, r.api, f); err != nil {
			return err
		}
	}
	return nil
}

// WaitReady polls the cluster until every node of the run is Ready (and initialised by the CCM when
// there is one), the CNI DaemonSet runs everywhere and CoreDNS is available.
type WaitReady struct {
	Timeout time.Duration
}

func (WaitReady) Name() string { return "wait" }

func (w WaitReady) Run(ctx context.Context, r *Run) error {
	timeout := w.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	var names []string
	for _, h := range r.Targets() {
		names = append(names, h.Name())
	}
	names = append(names, r.Settled()...)
	return r.fx.Observe(ctx, "nodes and CoreDNS ready", func(ctx context.Context) error {
		c, err := r.client(ctx)
		if err != nil {
			return err
		}
		if err := c.NodesReady(ctx, names, r.Cluster.Spec.ExternalCCM(), timeout); err != nil {
			return err
		}
		return c.DeploymentAvailable(ctx, "kube-system", "coredns", timeout)
	})
}

// SpreadCoreDNS restarts CoreDNS once when both replicas sit on one node although workers are
// Ready (DESIGN.md §3), then waits for it to be available again.
type SpreadCoreDNS struct{}

func (SpreadCoreDNS) Name() string { return "coredns-spread" }

func (SpreadCoreDNS) ShouldRun(r *Run) (bool, string) {
	if len(r.Cluster.Spec.Hosts) < 2 {
		return false, "a single node"
	}
	return true, ""
}

func (SpreadCoreDNS) Run(ctx context.Context, r *Run) error {
	// Where CoreDNS runs is only known once the nodes are up.
	return r.fx.Observe(ctx, "CoreDNS spread over the nodes", func(ctx context.Context) error {
		restarted, err := r.fx.Spread(ctx, r.api, "kube-system", "coredns")
		if err != nil || !restarted {
			return err
		}
		c, err := r.client(ctx)
		if err != nil {
			return err
		}
		return c.DeploymentAvailable(ctx, "kube-system", "coredns", 3*time.Minute)
	})
}

// AdminKubeconfig copies the admin kubeconfig from the first control plane to the state directory
// (0600); its server is the control-plane endpoint.
type AdminKubeconfig struct{}

func (AdminKubeconfig) Name() string { return "kubeconfig" }

func (AdminKubeconfig) Run(ctx context.Context, r *Run) error {
	cp, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	return saveAdminKubeconfig(ctx, r, cp)
}

// saveAdminKubeconfig copies cp's admin.conf to the state directory (0600) once it parses.
func saveAdminKubeconfig(ctx context.Context, r *Run, cp *Host) error {
	// admin.conf is kubeadm init's: a dry run of a new cluster has none to copy.
	return r.fx.Observe(ctx, "copy the admin kubeconfig to the state directory", func(ctx context.Context) error {
		conf, err := cp.ReadFile(ctx, constants.AdminConf)
		if err != nil {
			return fmt.Errorf("read admin.conf on %s: %w", cp.Name(), err)
		}
		if _, err := clientcmd.Load(conf); err != nil {
			return fmt.Errorf("admin.conf on %s does not parse: %w", cp.Name(), err)
		}
		return r.fx.WriteLocal(r.StateDir.AdminConf(), conf)
	})
}
