package phases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/versions"
)

// UpgradeOptions are the knobs of `installer upgrade`.
type UpgradeOptions struct {
	// MaxUnavailable workers are drained and upgraded at once (control planes always one at a time).
	MaxUnavailable int
	// Force also deletes pods no controller manages while draining.
	Force bool
	// DrainTimeout bounds each node's drain (PodDisruptionBudgets may hold it).
	DrainTimeout time.Duration
	// WaitTimeout bounds each wait on the cluster: health, a node's new version, the local apiserver.
	WaitTimeout time.Duration
	// pollInterval between drain attempts (tests shorten it).
	pollInterval time.Duration
}

func (o UpgradeOptions) withDefaults() UpgradeOptions {
	if o.MaxUnavailable < 1 {
		o.MaxUnavailable = 1
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Minute
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	return o
}

// Upgrade is the workflow of `installer upgrade` (DESIGN.md §3, in the order measured in
// lab-upgrade-ha.md): to the spec's kubernetesVersion, one minor at a time. Every step reads first
// where each node stands (versions installed and running), so a re-run after a failure continues
// and a run at the target does nothing.
func Upgrade(o UpgradeOptions) []Phase {
	o = o.withDefaults()
	return []Phase{
		Connect{},
		GatherFacts{},
		ClusterIdentity{Policy: PKIRequired},
		UpgradeCheck{},
		UpgradeHealth{PhaseName: "upgrade/health", Timeout: o.WaitTimeout},
		EtcdSnapshot{},
		UpgradeControlPlanes{},
		ApplyClusterFiles{PhaseName: "upgrade/cni", Match: func(p string) bool { return p == "cni.yaml" },
			Skip: func(r *Run) string {
				if r.Cluster.Spec.CNI.Plugin == v1alpha1.CNINone {
					return "cni.plugin is none"
				}
				return upgradeDone(r)
			}},
		ApplyClusterFiles{PhaseName: "upgrade/cloud-controller-manager", Match: func(p string) bool { return p == "ccm.yaml" },
			Skip: func(r *Run) string {
				if !r.Cluster.Spec.ExternalCCM() {
					return "no cloud provider"
				}
				return upgradeDone(r)
			}},
		UpgradeNodes{Role: v1alpha1.RoleControlPlane, Options: o},
		UpgradeNodes{Role: v1alpha1.RoleWorker, Options: o},
		UpgradeHealth{PhaseName: "upgrade/verify", Timeout: o.WaitTimeout, Final: true},
		AdminKubeconfig{},
	}
}

// leaseStale: a kubelet renews its Lease every 10 s; three missed renewals mean it is gone.
const leaseStale = 40 * time.Second

const (
	keyUpgradePlan = "upgrade-plan"
	// cordonReason is the value of kubeapi.CordonedBy on nodes this command cordoned.
	cordonReason = "upgrade"
)

// upgradePlan is where the cluster stands, read by UpgradeCheck and kept current by later phases.
type upgradePlan struct {
	Target string
	// ClusterVersion is kubeadm-config's kubernetesVersion (what `upgrade apply` last completed);
	// AddonVersion kube-proxy's image tag (what the last `upgrade apply/node` applied add-ons at).
	ClusterVersion, AddonVersion string
	Nodes                        map[string]*nodeStatus
	// Work is false when every node is at the target: the run does nothing.
	Work bool
}

type nodeStatus struct {
	// ControlPlane is the version of the host's control-plane static pods ("" on workers; the
	// oldest of apiserver, controller-manager and scheduler).
	ControlPlane string
	// Kubelet is the version the node's kubelet reports to the API.
	Kubelet string
	// Cordoned: an earlier upgrade cordoned it and did not get to uncordon it.
	Cordoned bool
}

func getPlan(r *Run) (*upgradePlan, error) {
	v, ok := r.Get(keyUpgradePlan)
	if !ok {
		return nil, errors.New("the upgrade plan was not read (phase upgrade/check did not run)")
	}
	return v.(*upgradePlan), nil
}

// upgradeDone is the skip reason of every phase once the cluster is at the target ("" otherwise).
func upgradeDone(r *Run) string {
	p, err := getPlan(r)
	if err == nil && !p.Work {
		return "every node runs " + p.Target
	}
	return ""
}

// nodeDone: the node's kubelet runs the target, every tool on it is at the target, and it is not
// left cordoned by an earlier run.
func (p *upgradePlan) nodeDone(h *Host) bool {
	st := p.Nodes[h.Name()]
	f := h.Facts
	return st != nil && st.Kubelet == p.Target && !st.Cordoned &&
		f.KubeletVersion == p.Target && f.KubeadmVersion == p.Target && f.KubectlVersion == p.Target
}

// controlPlaneDone: kubeadm moved this control plane's static pods (and, for the first, the
// cluster configuration; for the last, the add-ons) to the target.
func (p *upgradePlan) controlPlaneDone(r *Run, h *Host) bool {
	cps := r.TargetsWithRole(v1alpha1.RoleControlPlane)
	st := p.Nodes[h.Name()]
	if st == nil || st.ControlPlane != p.Target {
		return false
	}
	if h == cps[0] && p.ClusterVersion != p.Target {
		return false
	}
	return h != cps[len(cps)-1] || p.AddonVersion == p.Target
}

var controlPlaneManifests = []string{
	"/etc/kubernetes/manifests/kube-apiserver.yaml",
	"/etc/kubernetes/manifests/kube-controller-manager.yaml",
	"/etc/kubernetes/manifests/kube-scheduler.yaml",
}

// controlPlaneVersion is the oldest image tag of the host's control-plane static pods ("" when one
// is missing or untagged).
func (h *Host) controlPlaneVersion(ctx context.Context) (string, error) {
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.ManifestImages.Args(controlPlaneManifests...)})
	if err != nil {
		return "", fmt.Errorf("read control-plane manifests: %w", err)
	}
	oldest := ""
	for _, l := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		_, image, _ := strings.Cut(l, " ")
		tag := kubeapi.ImageTag(strings.Trim(strings.TrimSpace(image), `"'`))
		if tag == "" {
			return "", nil
		}
		if oldest == "" || versionLess(tag, oldest) {
			oldest = tag
		}
	}
	return oldest, nil
}

// UpgradeCheck reads where every node stands (control-plane static pods, the kubelet each node
// reports, kubeadm's cluster configuration, the add-ons) and refuses a downgrade or a skipped minor
// before anything is changed.
type UpgradeCheck struct{}

func (UpgradeCheck) Name() string { return "upgrade/check" }

func (UpgradeCheck) Run(ctx context.Context, r *Run) error {
	target := r.Cluster.Spec.KubernetesVersion
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	byName := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		byName[n.Name] = n
	}
	p := &upgradePlan{Target: target, Nodes: map[string]*nodeStatus{}}
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
				return fmt.Errorf("host %s: %w", h.Name(), err)
			}
			if st.ControlPlane == "" {
				return fmt.Errorf("host %s: no control-plane static pods with versioned images in /etc/kubernetes/manifests", h.Name())
			}
			observed = append(observed, Observed{What: "control plane on " + h.Name(), Version: st.ControlPlane})
		}
		p.Nodes[h.Name()] = st
	}
	if err := CheckUpgrade(observed, target, versions.Releases()); err != nil {
		return err
	}
	if p.ClusterVersion, err = clusterVersion(ctx, c); err != nil {
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
			"kubeadm", h.Facts.KubeadmVersion, "target", target, "done", done)
	}
	r.Set(keyUpgradePlan, p)
	if !p.Work {
		r.Log.Info("upgrade: every node already runs " + target + "; nothing to do")
	}
	return nil
}

// clusterVersion is the kubernetesVersion of kubeadm's ClusterConfiguration in the cluster.
func clusterVersion(ctx context.Context, c *kubeapi.Client) (string, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read kubeadm-config: %w", err)
	}
	var cc struct {
		KubernetesVersion string `json:"kubernetesVersion"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["ClusterConfiguration"]), &cc); err != nil {
		return "", fmt.Errorf("kubeadm-config: %w", err)
	}
	return cc.KubernetesVersion, nil
}

// UpgradeHealth waits until the cluster is healthy: every node Ready, the control-plane static
// pods running and Ready, every etcd member healthy. Final also requires every node, the add-ons
// and the control planes at the target.
type UpgradeHealth struct {
	PhaseName string
	Timeout   time.Duration
	Final     bool
}

func (u UpgradeHealth) Name() string { return u.PhaseName }

func (u UpgradeHealth) ShouldRun(r *Run) (bool, string) {
	if why := upgradeDone(r); why != "" {
		return false, why
	}
	if r.DryRun && u.Final {
		return false, "dry run"
	}
	return true, ""
}

func (u UpgradeHealth) Run(ctx context.Context, r *Run) error {
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
	if err := cp.etcdHealthy(ctx, u.Timeout); err != nil {
		return err
	}
	if !u.Final {
		return nil
	}
	p, err := getPlan(r)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.NodeVersion(ctx, n, p.Target, u.Timeout); err != nil {
			return err
		}
	}
	for _, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		v, err := h.controlPlaneVersion(ctx)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name(), err)
		}
		if v != p.Target {
			return fmt.Errorf("host %s: control plane at %s after the upgrade, want %s", h.Name(), v, p.Target)
		}
	}
	if v, err := c.DaemonSetImageTag(ctx, "kube-system", "kube-proxy"); err != nil || v != p.Target {
		return fmt.Errorf("kube-proxy at %q after the upgrade, want %s (%v)", v, p.Target, err)
	}
	return c.DeploymentAvailable(ctx, "kube-system", "coredns", u.Timeout)
}

// etcdHealthy waits until every etcd member answers healthy.
func (h *Host) etcdHealthy(ctx context.Context, timeout time.Duration) error {
	return kubeapi.Poll(ctx, 2*time.Second, timeout, "etcd members healthy", func(ctx context.Context) (bool, string, error) {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Etcd.Args("health")})
		var members []struct {
			Endpoint string `json:"endpoint"`
			Health   bool   `json:"health"`
			Error    string `json:"error"`
		}
		if jerr := json.Unmarshal(res.Stdout, &members); jerr != nil || len(members) == 0 {
			return false, fmt.Sprintf("etcdctl on %s: %v", h.Name(), err), nil
		}
		var bad []string
		for _, m := range members {
			if !m.Health {
				bad = append(bad, m.Endpoint+" "+m.Error)
			}
		}
		return len(bad) == 0 && err == nil, fmt.Sprintf("%d members, unhealthy: %s", len(members), strings.Join(bad, "; ")), nil
	})
}

// EtcdSnapshot saves etcd with etcdctl inside the first control plane's etcd pod, verifies it with
// etcdutl there, copies it to <state>/etcd-snapshots/ (0600) and checks the copy's SHA-256. It runs
// while the first control plane is still at the old version; once kubeadm has moved it, the
// snapshot of an earlier run is the one that matters and none is taken.
type EtcdSnapshot struct{}

func (EtcdSnapshot) Name() string { return "upgrade/etcd-snapshot" }

func (EtcdSnapshot) ShouldRun(r *Run) (bool, string) {
	if why := upgradeDone(r); why != "" {
		return false, why
	}
	p, err := getPlan(r)
	if err != nil {
		return true, ""
	}
	cp, err := r.firstControlPlane()
	if err == nil && p.controlPlaneDone(r, cp) {
		return false, "the first control plane already runs " + p.Target + " (the snapshot was taken before it moved)"
	}
	return true, ""
}

// SnapshotDir is where etcd snapshots land in the state directory.
func SnapshotDir(stateDir string) string { return filepath.Join(stateDir, "etcd-snapshots") }

func (EtcdSnapshot) Run(ctx context.Context, r *Run) error {
	cp, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	p, err := getPlan(r)
	if err != nil {
		return err
	}
	// Milliseconds: a re-run right after a failure takes its own snapshot, never one of the same name.
	name := fmt.Sprintf("etcd-%s-%s-%s-%s.db", cp.Name(), p.Nodes[cp.Name()].ControlPlane, p.Target, time.Now().UTC().Format("20060102T150405.000Z"))
	start := time.Now()
	res, err := cp.Exec(ctx, ssh.Cmd{Args: scripts.Etcd.Args("snapshot", name)})
	if err != nil {
		return fmt.Errorf("etcd snapshot on %s: %w", cp.Name(), err)
	}
	if r.DryRun {
		r.plan(PlannedAction{Host: cp.Name(), Command: "copy /var/lib/etcd/" + name + " to " + filepath.Join(SnapshotDir(r.StateDir), name) + " (0600), check its SHA-256, remove it from the host"})
		return nil
	}
	status, sum, err := parseSnapshotOutput(res.Stdout)
	if err != nil {
		return fmt.Errorf("etcd snapshot on %s: %w", cp.Name(), err)
	}
	remote := "/var/lib/etcd/" + name
	data, err := cp.ReadFile(ctx, remote)
	if err != nil {
		return fmt.Errorf("copy the etcd snapshot from %s: %w", cp.Name(), err)
	}
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) != sum {
		return fmt.Errorf("etcd snapshot copied from %s is damaged: SHA-256 %x, on the host %s", cp.Name(), got, sum)
	}
	local, err := saveSnapshot(SnapshotDir(r.StateDir), name, data)
	if err != nil {
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	// The copy is in the state directory; etcd's data directory is no place to keep it.
	if _, err := cp.Exec(ctx, ssh.Cmd{Args: []string{"rm", "-f", remote}}); err != nil {
		return fmt.Errorf("remove the snapshot from %s: %w", cp.Name(), err)
	}
	r.Log.Info("etcd snapshot saved and verified", "path", local, "bytes", len(data), "revision", status.Revision,
		"keys", status.TotalKey, "etcdutl hash", status.Hash, "seconds", time.Since(start).Seconds())
	r.Set(keySnapshot, local)
	return nil
}

const keySnapshot = "etcd-snapshot"

// saveSnapshot writes a snapshot into dir (0700) as a new 0600 file and returns its path. A backup
// is never replaced: the content goes to a temporary file that is hard-linked to the final name,
// which fails when that name exists.
func saveSnapshot(dir, name string, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	local := filepath.Join(dir, name)
	if err := os.Link(tmp.Name(), local); err != nil {
		return "", fmt.Errorf("keep %s: %w", local, err)
	}
	return local, nil
}

// snapshotStatus is `etcdutl snapshot status -w json`.
type snapshotStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
}

// parseSnapshotOutput reads etcdutl's JSON status line and the file's SHA-256 after it.
func parseSnapshotOutput(out []byte) (snapshotStatus, string, error) {
	var st snapshotStatus
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		return st, "", fmt.Errorf("unexpected output %q", out)
	}
	sum := strings.TrimSpace(lines[len(lines)-1])
	if err := json.Unmarshal([]byte(strings.Join(lines[:len(lines)-1], "\n")), &st); err != nil {
		return st, "", fmt.Errorf("etcdutl snapshot status: %w", err)
	}
	if st.TotalKey == 0 || st.Revision == 0 {
		return st, "", fmt.Errorf("etcdutl finds an empty snapshot (revision %d, %d keys)", st.Revision, st.TotalKey)
	}
	if len(sum) != 64 {
		return st, "", fmt.Errorf("no SHA-256 of the snapshot in %q", sum)
	}
	return st, sum, nil
}

// UpgradeControlPlanes moves the control planes' static pods with kubeadm: `upgrade plan` and
// `upgrade apply` on the first, then `upgrade node` on each other one at a time (in 1.35 the last
// one upgrades CoreDNS and kube-proxy). Each gets the new kubeadm first.
type UpgradeControlPlanes struct{}

func (UpgradeControlPlanes) Name() string { return "upgrade/control-planes" }

func (UpgradeControlPlanes) ShouldRun(r *Run) (bool, string) {
	if why := upgradeDone(r); why != "" {
		return false, why
	}
	return true, ""
}

func (UpgradeControlPlanes) Run(ctx context.Context, r *Run) error {
	p, err := getPlan(r)
	if err != nil {
		return err
	}
	for i, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		if p.controlPlaneDone(r, h) {
			continue
		}
		start := time.Now()
		if err := h.prepareKubeadm(ctx); err != nil {
			return fmt.Errorf("host %s: %w", h.Name(), err)
		}
		steps := [][]string{{"kubeadm", "upgrade", "node", "--config", kubeadm.UpgradeConfigPath}}
		if i == 0 {
			steps = [][]string{
				{"kubeadm", "upgrade", "plan", "--config", kubeadm.UpgradeConfigPath},
				{"kubeadm", "upgrade", "apply", "--config", kubeadm.UpgradeConfigPath, "--yes"},
			}
		}
		for _, argv := range steps {
			if _, err := h.Exec(ctx, ssh.Cmd{Args: argv}); err != nil {
				return fmt.Errorf("host %s: %s: %w", h.Name(), strings.Join(argv[:3], " "), err)
			}
		}
		p.Nodes[h.Name()].ControlPlane = p.Target
		if i == 0 {
			p.ClusterVersion = p.Target
		}
		if !r.DryRun {
			// The last `upgrade apply/node` applied the add-ons; read what it left.
			if c, err := r.client(ctx); err == nil {
				if v, err := c.DaemonSetImageTag(ctx, "kube-system", "kube-proxy"); err == nil {
					p.AddonVersion = v
				}
			}
		}
		if r.DryRun {
			r.Log.Info("upgrade (dry run): control plane would be upgraded", "host", h.Name(), "version", p.Target)
		} else {
			r.Log.Info("upgrade: control plane upgraded", "host", h.Name(), "version", p.Target, "seconds", time.Since(start).Seconds())
		}
	}
	return nil
}

// prepareKubeadm puts the UpgradeConfiguration and the target's kubeadm on the host.
func (h *Host) prepareKubeadm(ctx context.Context) error {
	s := &h.run.Cluster.Spec
	f, err := kubeadm.UpgradeFile(s, s.KubernetesVersion)
	if err != nil {
		return err
	}
	if _, err := h.Upload(ctx, f); err != nil {
		return err
	}
	if h.Facts.KubeadmVersion == s.KubernetesVersion {
		return nil
	}
	if err := h.installKubeadm(ctx); err != nil {
		return fmt.Errorf("install kubeadm %s: %w", s.KubernetesVersion, err)
	}
	h.Facts.KubeadmVersion = s.KubernetesVersion
	return nil
}

// installKubeadm installs only the target's kubeadm: the kubelet must wait until `kubeadm upgrade`
// has rewritten its flags (a 1.35 kubelet refuses the flags 1.34's kubeadm wrote).
func (h *Host) installKubeadm(ctx context.Context) error {
	s := &h.run.Cluster.Spec
	switch s.Install.Source {
	case v1alpha1.InstallPackage:
		return h.installKubeadmPackage(ctx)
	case v1alpha1.InstallBundle:
		for _, t := range install.KubeTools(s, h.Facts.Arch) {
			if t.Name == "kubeadm" {
				return uploadFromBundle(ctx, h, s, t.URL, t.Path)
			}
		}
	default:
		for _, t := range install.KubeTools(s, h.Facts.Arch) {
			if t.Name == "kubeadm" {
				_, err := h.Exec(ctx, ssh.Cmd{Args: install.DownloadBinary(t.URL, t.Path, install.Proxy(s)), Idempotent: true})
				return err
			}
		}
	}
	return errors.New("no kubeadm download")
}

// installKubeadmPackage installs only the target's kubeadm from the target minor's repository with
// the package phase's own code (which moves the repository to the spec's minor); the kubelet step
// installs the rest the same way.
func (h *Host) installKubeadmPackage(ctx context.Context) error {
	s := &h.run.Cluster.Spec
	all, err := install.KubePackageVersions(s)
	if err != nil {
		return err
	}
	files, err := hostFiles(h, s, h.run.Inputs, h.Facts.AdminConfPresent)
	if err != nil {
		return err
	}
	return installPackages(ctx, h, s, files, map[string]string{"kubeadm": all["kubeadm"]})
}

// UpgradeNodes upgrades the kubelet of every node of one role: control planes one at a time,
// workers in batches of MaxUnavailable. Per node: cordon and drain, `kubeadm upgrade node` on a
// worker (it must succeed first: it rewrites the kubelet's flags), the new kubelet and kubectl,
// restart, the node reports the target (and a control plane's re-created apiserver is ready),
// uncordon. Before each batch every node must be Ready: a batch never drains into a cluster that
// has already lost a node.
type UpgradeNodes struct {
	Role    v1alpha1.Role
	Options UpgradeOptions
}

func (u UpgradeNodes) Name() string {
	if u.Role == v1alpha1.RoleControlPlane {
		return "upgrade/nodes/control-planes"
	}
	return "upgrade/nodes/workers"
}

func (u UpgradeNodes) ShouldRun(r *Run) (bool, string) {
	if why := upgradeDone(r); why != "" {
		return false, why
	}
	p, err := getPlan(r)
	if err != nil {
		return true, ""
	}
	for _, h := range r.TargetsWithRole(u.Role) {
		if !p.nodeDone(h) {
			return true, ""
		}
	}
	return false, "every " + string(u.Role) + " runs " + p.Target
}

func (u UpgradeNodes) Run(ctx context.Context, r *Run) error {
	o := u.Options.withDefaults()
	p, err := getPlan(r)
	if err != nil {
		return err
	}
	var pending []*Host
	for _, h := range r.TargetsWithRole(u.Role) {
		if !p.nodeDone(h) {
			pending = append(pending, h)
		}
	}
	size := o.MaxUnavailable
	if u.Role == v1alpha1.RoleControlPlane {
		size = 1
	}
	var all []string
	for _, h := range r.Targets() {
		all = append(all, h.Name())
	}
	for len(pending) > 0 {
		n := min(size, len(pending))
		batch := pending[:n]
		pending = pending[n:]
		if !r.DryRun {
			c, err := r.client(ctx)
			if err != nil {
				return err
			}
			if err := c.NodesAlive(ctx, all, leaseStale, o.WaitTimeout); err != nil {
				return fmt.Errorf("before draining %s: %w", hostNames(batch), err)
			}
		}
		if err := ForEachHost(ctx, batch, n, func(ctx context.Context, h *Host) error {
			return h.upgradeNode(ctx, p, o)
		}); err != nil {
			return err
		}
	}
	return nil
}

func hostNames(hs []*Host) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name()
	}
	return strings.Join(names, ", ")
}

func (h *Host) upgradeNode(ctx context.Context, p *upgradePlan, o UpgradeOptions) error {
	r := h.run
	s := &r.Cluster.Spec
	start := time.Now()
	if !r.DryRun {
		// Re-read the host: it may have been restarted or changed since the run began. (A dry run
		// keeps the facts its recorded steps would have made true.)
		f, err := facts.Gather(ctx, h.Runner())
		if err != nil {
			return err
		}
		f.Name = h.Name()
		h.Facts = f
	}
	st := p.Nodes[h.Name()]
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	// A node someone else cordoned is drained but left cordoned afterwards.
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, h.Name(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read node %s: %w", h.Name(), err)
	}
	keepCordoned := node.Spec.Unschedulable && node.Annotations[kubeapi.CordonedBy] != cordonReason
	if r.DryRun {
		r.recordChange()
		r.plan(PlannedAction{Host: h.Name(), Command: fmt.Sprintf("cordon %s and drain it (evictions honour PodDisruptionBudgets, timeout %s)", h.Name(), o.DrainTimeout)})
	} else {
		if !keepCordoned {
			if err := c.Cordon(ctx, h.Name(), cordonReason); err != nil {
				return err
			}
			st.Cordoned = true
			r.recordChange()
		}
		if err := c.Drain(ctx, h.Name(), kubeapi.DrainOptions{Timeout: o.DrainTimeout, Force: o.Force, Interval: o.pollInterval,
			Report: func(msg string) { r.Log.Warn(msg) }}); err != nil {
			return err
		}
	}
	if h.Spec.Role == v1alpha1.RoleControlPlane {
		if st.ControlPlane != p.Target {
			return fmt.Errorf("its control plane runs %s, not %s: kubeadm upgrade did not complete", st.ControlPlane, p.Target)
		}
	} else if h.Facts.KubeletVersion != p.Target {
		// The kubelet is swapped only after this succeeded, so a kubelet at the target proves it ran.
		if err := h.prepareKubeadm(ctx); err != nil {
			return err
		}
		argv := []string{"kubeadm", "upgrade", "node", "--config", kubeadm.UpgradeConfigPath}
		if _, err := h.Exec(ctx, ssh.Cmd{Args: argv}); err != nil {
			return fmt.Errorf("kubeadm upgrade node: %w", err)
		}
	}
	// kubeadm (if a control plane's was not already), kubelet and kubectl at the target.
	swapped := h.Facts.KubeletVersion != p.Target
	files, err := hostFiles(h, s, r.Inputs, h.Facts.AdminConfPresent)
	if err != nil {
		return err
	}
	changed, err := installKubernetes(ctx, h, s, files, swapped || st.Kubelet != p.Target)
	if err != nil {
		return err
	}
	if swapped || changed || st.Kubelet != p.Target {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "restart", "kubelet"}}); err != nil {
			return err
		}
	}
	if !r.DryRun {
		if err := c.NodeVersion(ctx, h.Name(), p.Target, o.WaitTimeout); err != nil {
			return err
		}
		st.Kubelet = p.Target
		if h.Spec.Role == v1alpha1.RoleControlPlane {
			if err := h.waitLocalAPIServer(ctx, o.WaitTimeout); err != nil {
				return err
			}
		}
	}
	if r.DryRun {
		r.plan(PlannedAction{Host: h.Name(), Command: fmt.Sprintf("wait until %s reports %s, then uncordon it", h.Name(), p.Target)})
	} else if !keepCordoned {
		if err := c.Uncordon(ctx, h.Name()); err != nil {
			return err
		}
		st.Cordoned = false
	}
	if r.DryRun {
		r.Log.Info("upgrade (dry run): node would be upgraded", "host", h.Name(), "version", p.Target)
	} else {
		r.Log.Info("upgrade: node upgraded", "host", h.Name(), "version", p.Target, "seconds", time.Since(start).Seconds())
	}
	return nil
}

// recreateGrace is how long after a kubelet restart the installer waits for it to re-create the
// apiserver's static pod before deciding it keeps the old one (a kubelet whose pod hashes did not
// change). Measured: a minor upgrade re-creates every static pod a few seconds after the node
// reports its new version.
const recreateGrace = 90 * time.Second

// waitLocalAPIServer waits until the new kubelet has re-created the local apiserver (its ready
// sandbox is younger than the kubelet) and that apiserver answers /readyz.
func (h *Host) waitLocalAPIServer(ctx context.Context, timeout time.Duration) error {
	return kubeapi.Poll(ctx, 2*time.Second, timeout, "the apiserver on "+h.Name()+" ready after the kubelet restart", func(ctx context.Context) (bool, string, error) {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.KubeletPods.Args("kube-apiserver-" + h.Name())})
		if err != nil {
			return false, "crictl: " + err.Error(), nil
		}
		started, newest, err := parseStaticPods(res.Stdout)
		if err != nil {
			return false, err.Error(), nil
		}
		if newest.Before(started) && time.Since(started) < recreateGrace {
			return false, "the kubelet has not re-created the apiserver's pod yet", nil
		}
		if _, err := h.Query(ctx, ssh.Cmd{Args: []string{"curl", "-fsk", "--max-time", "5", "https://127.0.0.1:6443/readyz"}}); err != nil {
			return false, "/readyz: " + err.Error(), nil
		}
		return true, "", nil
	})
}

// parseStaticPods reads kubelet-pods.sh's output: the kubelet's start and the newest ready sandbox.
func parseStaticPods(out []byte) (started, newest time.Time, err error) {
	first, rest, _ := strings.Cut(string(out), "\n")
	sec, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return started, newest, fmt.Errorf("kubelet start time %q: %w", first, err)
	}
	started = time.Unix(sec, 0)
	var pods struct {
		Items []struct {
			CreatedAt string `json:"createdAt"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(rest), &pods); err != nil {
		return started, newest, fmt.Errorf("crictl pods: %w", err)
	}
	for _, p := range pods.Items {
		ns, err := strconv.ParseInt(p.CreatedAt, 10, 64)
		if err != nil {
			continue
		}
		if t := time.Unix(0, ns); t.After(newest) {
			newest = t
		}
	}
	if newest.IsZero() {
		return started, newest, errors.New("no ready apiserver pod")
	}
	return started, newest, nil
}

func versionLess(a, b string) bool {
	va, errA := utilversion.ParseSemantic(a)
	vb, errB := utilversion.ParseSemantic(b)
	if errA != nil || errB != nil {
		return a < b
	}
	return va.LessThan(vb)
}
