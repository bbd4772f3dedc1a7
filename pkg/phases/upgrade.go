package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	utilversion "k8s.io/apimachinery/pkg/util/version"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
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
// and a run at the target does nothing. UpgradeCheck fills the one upgradeState the later phases
// read and keep current.
func Upgrade(o UpgradeOptions) []Phase {
	o = o.withDefaults()
	st := &upgradeState{}
	return []Phase{
		Connect{},
		GatherFacts{},
		ClusterIdentity{Policy: PKIRequired},
		UpgradeCheck{st: st},
		UpgradeHealth{st: st, PhaseName: "upgrade/health", Timeout: o.WaitTimeout},
		EtcdSnapshot{st: st},
		UpgradeControlPlanes{st: st, Timeout: o.WaitTimeout},
		ApplyClusterFiles{PhaseName: "upgrade/cni", Match: func(p string) bool { return p == "cni.yaml" },
			Skip: func(r *Run) string {
				if r.Cluster.Spec.CNI.Plugin == v1alpha1.CNINone {
					return "cni.plugin is none"
				}
				return st.doneReason()
			}},
		ApplyClusterFiles{PhaseName: "upgrade/cloud-controller-manager", Match: func(p string) bool { return p == "ccm.yaml" },
			Skip: func(r *Run) string {
				if !r.Cluster.Spec.ExternalCCM() {
					return "no cloud provider"
				}
				return st.doneReason()
			}},
		UpgradeNodes{st: st, Role: v1alpha1.RoleControlPlane, Options: o},
		UpgradeNodes{st: st, Role: v1alpha1.RoleWorker, Options: o},
		UpgradeHealth{st: st, PhaseName: "upgrade/verify", Timeout: o.WaitTimeout, Final: true},
		AdminKubeconfig{},
	}
}

// leaseStale: a kubelet renews its Lease every 10 s; three missed renewals mean it is gone.
const leaseStale = 40 * time.Second

// cordonReason is the value of kubeapi.CordonedBy on nodes this command cordoned.
const cordonReason = "upgrade"

// upgradeState is where the cluster stands: read by UpgradeCheck, kept current by later phases.
type upgradeState struct {
	// checked: UpgradeCheck filled the rest.
	checked bool
	Target  string
	// ClusterVersion is kubeadm-config's kubernetesVersion (what `upgrade apply` last completed);
	// AddonVersion kube-proxy's image tag (what the last `upgrade apply/node` applied add-ons at).
	ClusterVersion, AddonVersion string
	Nodes                        map[string]*nodeStatus
	// Containerd is the containerd release every node must run ("2.3.7"; "" when the spec keeps the
	// distribution's containerd): a node on another one gets it while drained.
	Containerd string
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

var errNotChecked = errors.New("the cluster's versions were not read (phase upgrade/check did not run)")

// doneReason is the skip reason of every phase once the cluster is at the target ("" otherwise).
func (p *upgradeState) doneReason() string {
	if p.checked && !p.Work {
		return "every node runs " + p.Target
	}
	return ""
}

// nodeDone: the node's kubelet runs the target, every tool on it is at the target, it runs the
// spec's containerd, and it is not left cordoned by an earlier run.
func (p *upgradeState) nodeDone(h *Host) bool {
	st := p.Nodes[h.Name()]
	f := h.now()
	return st != nil && st.Kubelet == p.Target && !st.Cordoned && p.runtimeDone(h) &&
		f.KubeletVersion == p.Target && f.KubeadmVersion == p.Target && f.KubectlVersion == p.Target
}

// runtimeDone: the node runs the containerd the spec wants (or the spec keeps the distribution's).
func (p *upgradeState) runtimeDone(h *Host) bool {
	return p.Containerd == "" || h.now().ContainerdVersion == p.Containerd
}

// controlPlaneDone: kubeadm moved this control plane's static pods (and, for the first, the
// cluster configuration; for the last, the add-ons) to the target.
func (p *upgradeState) controlPlaneDone(r *Run, h *Host) bool {
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
	constants.KubeAPIServerManifest,
	constants.KubeControllerManagerManifest,
	constants.KubeSchedulerManifest,
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

func versionLess(a, b string) bool {
	va, errA := utilversion.ParseSemantic(a)
	vb, errB := utilversion.ParseSemantic(b)
	if errA != nil || errB != nil {
		return a < b
	}
	return va.LessThan(vb)
}
