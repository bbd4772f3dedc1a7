package phases

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
)

const keyClient = "kube-client"

// client connects to the cluster through the first control plane's local apiserver, once per run.
func (r *Run) client(ctx context.Context) (*kubeapi.Client, error) {
	if v, ok := r.Get(keyClient); ok {
		return v.(*kubeapi.Client), nil
	}
	cp, err := r.firstControlPlane()
	if err != nil {
		return nil, err
	}
	conf, err := cp.ReadFile(ctx, "/etc/kubernetes/admin.conf")
	if err != nil {
		return nil, fmt.Errorf("read admin.conf on %s: %w", cp.Name(), err)
	}
	c, err := kubeapi.Connect(conf, cp.Runner().DialContext)
	if err != nil {
		return nil, err
	}
	r.Set(keyClient, c)
	return c, nil
}

// ApplyClusterFiles applies rendered add-ons (cni.yaml, ccm.yaml, addons/*) with server-side apply.
// In a dry run the objects are only listed.
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
	if r.DryRun {
		for _, f := range selected {
			objs, err := kubeapi.Decode(f.Content)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Path, err)
			}
			r.recordChange()
			r.plan(PlannedAction{Host: "cluster", Command: fmt.Sprintf("server-side apply cluster/%s (%d objects)", f.Path, len(objs)),
				File: &PlannedFile{Path: "cluster/" + f.Path, Mode: f.Mode, SHA256: f.SHA256(), Display: f.Display(), Sensitive: f.Sensitive}})
		}
		return nil
	}
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	for _, f := range selected {
		n, err := c.Apply(ctx, f.Content)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		for i := 0; i < n; i++ {
			r.recordChange()
		}
		r.Log.Debug("applied", "file", f.Path, "changed objects", n)
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
	if r.DryRun {
		return nil
	}
	timeout := w.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, h := range r.Targets() {
		names = append(names, h.Name())
	}
	names = append(names, r.settled...)
	if err := c.NodesReady(ctx, names, r.Cluster.Spec.ExternalCCM(), timeout); err != nil {
		return err
	}
	return c.DeploymentAvailable(ctx, "kube-system", "coredns", timeout)
}

// SpreadCoreDNS restarts CoreDNS once when both replicas sit on one node although workers are
// Ready (DESIGN.md §3), then waits for it to be available again.
type SpreadCoreDNS struct{}

func (SpreadCoreDNS) Name() string { return "coredns-spread" }

func (SpreadCoreDNS) ShouldRun(r *Run) (bool, string) {
	if len(r.Cluster.Spec.Hosts) < 2 {
		return false, "a single node"
	}
	return !r.DryRun, "dry run"
}

func (SpreadCoreDNS) Run(ctx context.Context, r *Run) error {
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	restarted, err := c.SpreadDeployment(ctx, "kube-system", "coredns")
	if err != nil || !restarted {
		return err
	}
	r.recordChange()
	return c.DeploymentAvailable(ctx, "kube-system", "coredns", 3*time.Minute)
}

// AdminKubeconfig copies the admin kubeconfig from the first control plane to the state directory
// (0600); its server is the control-plane endpoint.
type AdminKubeconfig struct{}

func (AdminKubeconfig) Name() string { return "kubeconfig" }

func (AdminKubeconfig) ShouldRun(r *Run) (bool, string) { return !r.DryRun, "dry run" }

func (AdminKubeconfig) Run(ctx context.Context, r *Run) error {
	cp, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	conf, err := cp.ReadFile(ctx, "/etc/kubernetes/admin.conf")
	if err != nil {
		return fmt.Errorf("read admin.conf on %s: %w", cp.Name(), err)
	}
	if _, err := clientcmd.Load(conf); err != nil {
		return fmt.Errorf("admin.conf on %s does not parse: %w", cp.Name(), err)
	}
	path := AdminConfPath(r.StateDir)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, conf) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, conf, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	r.recordChange()
	return nil
}

// AdminConfPath is where the admin kubeconfig lives in the state directory.
func AdminConfPath(stateDir string) string { return filepath.Join(stateDir, "admin.conf") }
