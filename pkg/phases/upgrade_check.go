package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	utilversion "k8s.io/apimachinery/pkg/util/version"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/versions"
)

// UpgradeCheck reads where every node stands (control-plane static pods, the kubelet each node
// reports, kubeadm's cluster configuration, the add-ons) and refuses a downgrade or a skipped minor
// before anything is changed.
type UpgradeCheck struct{ st *upgradeState }

func (UpgradeCheck) Name() string { return "upgrade/check" }

func (u UpgradeCheck) Run(ctx context.Context, r *Run) error {
	target := r.Cluster.Spec.KubernetesVersion
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	byName, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	p := u.st
	*p = upgradeState{Target: target, Nodes: map[string]*nodeStatus{}}
	if rt := r.Cluster.Spec.ContainerRuntime.Containerd; rt.Source == v1alpha1.InstallBinary {
		p.Containerd = strings.TrimPrefix(rt.Version, "v")
	}
	var observed []Observed
	for _, h := range r.Targets() {
		n, ok := byName[h.Name()]
		if !ok {
			return fmt.Errorf("host %s is not a node of the cluster: join it first (installer join node --host %s)", h.Name(), h.Name())
		}
		st := &nodeStatus{Kubelet: n.Status.NodeInfo.KubeletVersion, Cordoned: n.Annotations[kubeapi.CordonedBy] == cordonReason}
		observed = append(observed, Observed{What: "kubelet on " + h.Name(), Version: st.Kubelet})
		if h.Spec.Role == v1alpha1.RoleControlPlane {
			if st.ControlPlane, err = h.controlPlaneVersion(ctx); err != nil {
				return hostErr(h.Name(), err)
			}
			if st.ControlPlane == "" {
				return hostErr(h.Name(), errors.New("no control-plane static pods with versioned images in /etc/kubernetes/manifests"))
			}
			observed = append(observed, Observed{What: "control plane on " + h.Name(), Version: st.ControlPlane})
		}
		p.Nodes[h.Name()] = st
	}
	if err := CheckUpgrade(observed, target, versions.Releases()); err != nil {
		return err
	}
	if p.ClusterVersion, err = c.KubeadmClusterVersion(ctx); err != nil {
		return err
	}
	if p.AddonVersion, err = c.DaemonSetImageTag(ctx, "kube-system", "kube-proxy"); err != nil {
		return fmt.Errorf("read kube-proxy: %w", err)
	}
	for _, h := range r.Targets() {
		st := p.Nodes[h.Name()]
		done := p.nodeDone(h) && (h.Spec.Role != v1alpha1.RoleControlPlane || p.controlPlaneDone(r, h))
		if !done {
			p.Work = true
		}
		r.Log.Info("upgrade: node", "host", h.Name(), "role", h.Spec.Role, "control plane", st.ControlPlane, "kubelet", st.Kubelet,
			"kubeadm", h.now().KubeadmVersion, "containerd", h.now().ContainerdVersion, "target", target, "done", done)
	}
	if p.Work {
		if err := checkDownloads(r); err != nil {
			return exitcode.New(exitcode.Preflight, fmt.Errorf("%w\nnothing was changed", err))
		}
	}
	p.checked = true
	if !p.Work {
		r.Log.Info("upgrade: every node already runs " + target + "; nothing to do" + nextUpgrade(target, versions.Releases()))
	}
	return nil
}

// nextUpgrade names the next minor's supported release after version, as kubeadm's upgrade plan
// does: "" when version is the newest.
func nextUpgrade(version string, releases []versions.Release) string {
	v, err := utilversion.ParseSemantic(version)
	if err != nil {
		return ""
	}
	for _, r := range releases {
		rv := utilversion.MustParseSemantic(r.Kubernetes)
		if rv.Major() == v.Major() && rv.Minor() == v.Minor()+1 {
			return "; " + r.Kubernetes + " is available: set kubernetesVersion: " + r.Kubernetes + " (or pass --to " + r.Kubernetes + ")"
		}
	}
	return ""
}

// UpgradeHealth waits until the cluster is healthy: every node Ready, the control-plane static
// pods running and Ready, every etcd member healthy. Final also requires every node, the add-ons
// and the control planes at the target.
type UpgradeHealth struct {
	st        *upgradeState
	PhaseName string
	Timeout   time.Duration
	Final     bool
}

func (u UpgradeHealth) Name() string { return u.PhaseName }

func (u UpgradeHealth) ShouldRun(*Run) (bool, string) {
	if why := u.st.doneReason(); why != "" {
		return false, why
	}
	return true, ""
}

func (u UpgradeHealth) Run(ctx context.Context, r *Run) error {
	if !u.Final {
		return u.healthy(ctx, r)
	}
	// After the upgrade: only a made change can be verified.
	return r.fx.Observe(ctx, "the cluster healthy at "+u.st.Target, func(ctx context.Context) error {
		if err := u.healthy(ctx, r); err != nil {
			return err
		}
		return u.atTarget(ctx, r)
	})
}

// healthy waits until every node is alive, the control planes' static pods run and etcd is healthy.
func (u UpgradeHealth) healthy(ctx context.Context, r *Run) error {
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	var names, cpNames []string
	for _, h := range r.Targets() {
		names = append(names, h.Name())
		if h.Spec.Role == v1alpha1.RoleControlPlane {
			cpNames = append(cpNames, h.Name())
		}
	}
	if err := c.NodesAlive(ctx, names, leaseStale, u.Timeout); err != nil {
		return err
	}
	if err := c.ControlPlaneHealthy(ctx, cpNames, u.Timeout); err != nil {
		return err
	}
	cp, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	return cp.etcdHealthy(ctx, u.Timeout)
}

// atTarget checks every node, control plane and add-on at the target.
func (u UpgradeHealth) atTarget(ctx context.Context, r *Run) error {
	p := u.st
	if !p.checked {
		return errNotChecked
	}
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	for _, h := range r.Targets() {
		if err := c.NodeVersion(ctx, h.Name(), p.Target, u.Timeout); err != nil {
			return err
		}
	}
	for _, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		v, err := h.controlPlaneVersion(ctx)
		if err != nil {
			return hostErr(h.Name(), err)
		}
		if v != p.Target {
			return hostErr(h.Name(), fmt.Errorf("control plane at %s after the upgrade, want %s", v, p.Target))
		}
	}
	if v, err := c.DaemonSetImageTag(ctx, "kube-system", "kube-proxy"); err != nil || v != p.Target {
		return fmt.Errorf("kube-proxy at %q after the upgrade, want %s (%v)", v, p.Target, err)
	}
	return c.DeploymentAvailable(ctx, "kube-system", "coredns", u.Timeout)
}

// etcdHealthy waits until every etcd member answers healthy.
func (h *Host) etcdHealthy(ctx context.Context, timeout time.Duration) error {
	_, err := h.etcdMembersHealthy(ctx, timeout)
	return err
}

// etcdMembersHealthy waits until every etcd member answers healthy and returns how many there are.
func (h *Host) etcdMembersHealthy(ctx context.Context, timeout time.Duration) (int, error) {
	return h.etcdMembersHealthyN(ctx, timeout, 0)
}

// etcdHealth reads every etcd member's health once (etcd.sh health on h): how many members there
// are, and the client endpoints that do not answer healthy with the reason each gives.
func (h *Host) etcdHealth(ctx context.Context) (int, map[string]string, error) {
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Etcd.Args("health")})
	var members []struct {
		Endpoint string `json:"endpoint"`
		Health   bool   `json:"health"`
		Error    string `json:"error"`
	}
	// etcdctl exits non-zero when a member is unhealthy, and still prints every member's health.
	if jerr := json.Unmarshal(res.Stdout, &members); jerr != nil || len(members) == 0 {
		if err == nil {
			err = fmt.Errorf("no member health in %q", strings.TrimSpace(string(res.Stdout)))
		}
		return 0, nil, hostErr(h.Name(), fmt.Errorf("etcd's health: %w", err))
	}
	bad := map[string]string{}
	for _, m := range members {
		if !m.Health {
			bad[m.Endpoint] = m.Error
		}
	}
	return len(members), bad, nil
}

// etcdUnhealthy: the client endpoints of etcd that do not answer healthy, read once.
func (h *Host) etcdUnhealthy(ctx context.Context) (map[string]string, error) {
	_, bad, err := h.etcdHealth(ctx)
	return bad, err
}

// etcdMembersHealthyN is etcdMembersHealthy that also waits for want members when want > 0: a
// member that has not started yet since a restore has published no client URL and is not listed.
func (h *Host) etcdMembersHealthyN(ctx context.Context, timeout time.Duration, want int) (int, error) {
	n := 0
	err := kubeapi.Poll(ctx, 2*time.Second, timeout, "etcd members healthy", func(ctx context.Context) (bool, string, error) {
		total, bad, err := h.etcdHealth(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		n = total
		if want > 0 && n != want {
			return false, fmt.Sprintf("%d members answer, want %d", n, want), nil
		}
		var why []string
		for _, ep := range slices.Sorted(maps.Keys(bad)) {
			why = append(why, ep+" "+bad[ep])
		}
		return len(bad) == 0, fmt.Sprintf("%d members, unhealthy: %s", n, strings.Join(why, "; ")), nil
	})
	return n, err
}
