package phases

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// ApplyBackupDir keeps, per apply run, the apiserver certificates apply replaced.
const ApplyBackupDir = constants.InstallerDataDir + "/apply"

// ApplyOptions tune the reconcile phases.
type ApplyOptions struct {
	// Timeout bounds each wait: a restarted component, the apiserver ready, a node's kubelet.
	Timeout time.Duration
	// RunID names this run's backup directory under ApplyBackupDir.
	RunID string
	// pollInterval between polls (tests shorten it).
	pollInterval time.Duration
}

func (o ApplyOptions) withDefaults() ApplyOptions {
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.pollInterval == 0 {
		o.pollInterval = 2 * time.Second
	}
	if o.RunID == "" {
		o.RunID = time.Now().UTC().Format("20060102T150405Z")
	}
	return o
}

// ApplyCluster is the reconcile part of `installer apply`, in order: the hosts gone for good
// removed from the surviving side, the control planes' static
// pods and certificates (one at a time), the kubelets' configuration (node by node), containerd's
// files (node by node), the nodes' labels and taints, the CNI, CCM and add-on files whose objects
// differ (server-side apply), the new hosts joined, the hosts marked remove removed (etcd grows
// before it shrinks when a control plane is replaced), then every haproxy made to balance the
// control planes as they now are.
func ApplyCluster(d *ApplyDiff, o ApplyOptions) []Phase {
	return []Phase{
		ApplyRemoveGone{Diff: d, Options: o},
		ApplyControlPlanes{Diff: d, Options: o},
		ApplyKubelet{Diff: d, Options: o},
		ApplyRuntime{Diff: d, Options: o},
		ApplyNodeMeta{Diff: d},
		ApplyAddons{Diff: d},
		ApplyJoin{Diff: d},
		ApplyRemove{Diff: d, Options: o},
		ApplyLBMembers{Diff: d, Options: o},
	}
}

// ApplyControlPlanes makes each control plane's static pods and apiserver certificate what the
// spec says, the kubeadm way: the documents of kubeadm.Reconfigure uploaded, a certificate with new
// names issued by `kubeadm init phase certs apiserver` (the old one kept), a component's manifest
// rendered again by `kubeadm init phase control-plane`. One control plane at a time, out of the
// API's load balancer while its apiserver restarts, the VIP holder last; each is done only once its
// processes run with the manifest's flags and serve the new certificate, and its apiserver is
// ready. Then kubeadm-config gets the new ClusterConfiguration, so later joins and upgrades keep it.
type ApplyControlPlanes struct {
	Diff    *ApplyDiff
	Options ApplyOptions
}

func (ApplyControlPlanes) Name() string { return "apply/control-planes" }

func (a ApplyControlPlanes) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && len(a.Diff.controlPlanes) == 0 && !a.Diff.kubeadmConfig && !a.Diff.lbLeftovers {
		return false, "every control plane runs the spec's flags and certificate names"
	}
	return true, ""
}

func (a ApplyControlPlanes) Run(ctx context.Context, r *Run) error {
	d, o := a.Diff, a.Options.withDefaults()
	if !d.observed {
		return errNotObserved
	}
	var cps []*Host
	for _, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		if d.controlPlanes[h.Name()] != nil {
			cps = append(cps, h)
		}
	}
	lb := d.apiLB(r, o.Timeout)
	if lb != nil {
		if err := lb.finishLeftovers(ctx); err != nil {
			return err
		}
	}
	cps, err := lb.lastHolder(ctx, cps)
	if err != nil {
		return err
	}
	for i, h := range cps {
		cp := d.controlPlanes[h.Name()]
		start := time.Now()
		change := func(ctx context.Context) error { return a.reconcile(ctx, r, h, cp, o) }
		if cp.certificate || slices.Contains(cp.components, "apiserver") {
			err = lb.outOfService(ctx, h, "apply", false, change)
		} else {
			err = change(ctx)
		}
		if err != nil {
			if rest := hostNames(cps[i+1:]); rest != "" {
				err = fmt.Errorf("%w (not changed after it: %s)", err, rest)
			}
			return err
		}
		r.fx.Done("control plane reconfigured", start, "host", h.Name())
	}
	if !d.kubeadmConfig {
		return nil
	}
	first, err := d.firstControlPlane(r)
	if err != nil {
		return err
	}
	if err := uploadReconfigure(ctx, r, first); err != nil {
		return err
	}
	if _, err := first.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "init", "phase", "upload-config", "kubeadm", "--config", kubeadm.ReconfigurePath}}); err != nil {
		return hostErr(first.Name(), fmt.Errorf("store the ClusterConfiguration in kubeadm-config: %w", err))
	}
	return nil
}

// uploadReconfigure writes the documents kubeadm's init phases read on control plane h.
func uploadReconfigure(ctx context.Context, r *Run, h *Host) error {
	f, err := kubeadm.Reconfigure(&r.Cluster.Spec, h.Spec)
	if err != nil {
		return err
	}
	if _, err := h.Upload(ctx, f); err != nil {
		return hostErr(h.Name(), err)
	}
	return nil
}

// reconcile makes one control plane what the spec says.
func (a ApplyControlPlanes) reconcile(ctx context.Context, r *Run, h *Host, cp *controlPlaneDrift, o ApplyOptions) error {
	if err := uploadReconfigure(ctx, r, h); err != nil {
		return err
	}
	if cp.certificate {
		backup := path.Join(ApplyBackupDir, o.RunID)
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.APIServerCert.Args(kubeadm.ReconfigurePath, backup)},
			[]string{"copy apiserver.crt and apiserver.key to " + backup + ", remove them, then kubeadm init phase certs apiserver --config " + kubeadm.ReconfigurePath}); err != nil {
			return hostErr(h.Name(), fmt.Errorf("issue the apiserver certificate: %w", err))
		}
	}
	timeout := strconv.Itoa(int(o.Timeout.Seconds()))
	for _, c := range applyComponents {
		if !slices.Contains(cp.components, c.phase) {
			continue
		}
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.RenderStaticPod.Args(timeout, kubeadm.ReconfigurePath, c.phase, c.pod)},
			[]string{"replace " + c.pod + ": its manifest moved out until its container stopped, then kubeadm init phase control-plane " + c.phase + " --config " + kubeadm.ReconfigurePath}); err != nil {
			return hostErr(h.Name(), fmt.Errorf("replace %s with its new manifest: %w", c.pod, err))
		}
		err := r.fx.Observe(ctx, h.Name()+"'s "+c.pod+" running with its new manifest's flags", func(ctx context.Context) error {
			return waitRunsManifest(ctx, h, c.pod, c.comm, o.pollInterval, o.Timeout)
		})
		if err != nil {
			return hostErr(h.Name(), err)
		}
	}
	if cp.certificate && !slices.Contains(cp.components, "apiserver") {
		// The manifest did not change: only a restart makes the apiserver read the new certificate.
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.RestartStaticPod.Args(timeout, "kube-apiserver")},
			[]string{"restart kube-apiserver: its manifest moved out until its container stopped, then back"}); err != nil {
			return hostErr(h.Name(), fmt.Errorf("restart kube-apiserver: %w", err))
		}
	}
	if !cp.certificate && !slices.Contains(cp.components, "apiserver") {
		return nil
	}
	return r.fx.Observe(ctx, h.Name()+"'s apiserver serving its certificate and ready", func(ctx context.Context) error {
		if cp.certificate {
			if _, err := waitServed(ctx, h, constants.LocalAPIServer, constants.PKIDir+"/apiserver.crt", o.pollInterval, o.Timeout); err != nil {
				return hostErr(h.Name(), err)
			}
		}
		if err := h.waitReadyz(ctx, o.pollInterval, o.Timeout); err != nil {
			return hostErr(h.Name(), err)
		}
		return nil
	})
}

// waitRunsManifest polls until exactly one process of the component runs, with the flags of its
// manifest: the kubelet has replaced the old one.
func waitRunsManifest(ctx context.Context, h *Host, pod, comm string, interval, timeout time.Duration) error {
	command, err := manifestCommand(ctx, h, pod)
	if err != nil {
		return err
	}
	want := drift.ParseFlags(command)
	return kubeapi.Poll(ctx, interval, timeout, pod+" to run with its manifest's flags", func(ctx context.Context) (bool, string, error) {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Processes.Args(comm)})
		if err != nil {
			return false, "", err
		}
		procs := strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
		if len(procs) != 1 || procs[0] == "" {
			return false, fmt.Sprintf("%d processes", len(procs)), nil
		}
		have := drift.ParseFlags(strings.Fields(procs[0]))
		if !maps.Equal(have, want) {
			return false, "the running process has other flags", nil
		}
		return true, "", nil
	})
}

// ApplyKubelet makes every node's kubelet run the spec's configuration, kubeadm's way: the
// cluster's kubelet-config first (`kubeadm init phase upload-config kubelet`), then node by node
// `kubeadm upgrade node phase kubelet-config` writes it to the node and the kubelet restarts; the
// next node waits until this one's kubelet reports the spec's settings.
type ApplyKubelet struct {
	Diff    *ApplyDiff
	Options ApplyOptions
}

func (ApplyKubelet) Name() string { return "apply/kubelet" }

func (a ApplyKubelet) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && len(a.Diff.kubelet) == 0 && !a.Diff.kubeletConfig {
		return false, "every kubelet runs the spec's configuration"
	}
	return true, ""
}

func (a ApplyKubelet) Run(ctx context.Context, r *Run) error {
	d, o := a.Diff, a.Options.withDefaults()
	if !d.observed {
		return errNotObserved
	}
	if d.kubeletConfig {
		first, err := d.firstControlPlane(r)
		if err != nil {
			return err
		}
		if err := uploadReconfigure(ctx, r, first); err != nil {
			return err
		}
		if _, err := first.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "init", "phase", "upload-config", "kubelet", "--config", kubeadm.ReconfigurePath}}); err != nil {
			return hostErr(first.Name(), fmt.Errorf("store the KubeletConfiguration in kubelet-config: %w", err))
		}
	}
	set, err := kubeadm.KubeletConfiguration(&r.Cluster.Spec)
	if err != nil {
		return err
	}
	for _, h := range r.Targets() {
		if !d.kubelet[h.Name()] {
			continue
		}
		start := time.Now()
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "upgrade", "node", "phase", "kubelet-config"}}); err != nil {
			return hostErr(h.Name(), fmt.Errorf("write the kubelet's configuration: %w", err))
		}
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "restart", "kubelet"}}); err != nil {
			return hostErr(h.Name(), fmt.Errorf("restart the kubelet: %w", err))
		}
		err := r.fx.Observe(ctx, h.Name()+"'s kubelet running the spec's configuration", func(ctx context.Context) error {
			return waitKubeletRuns(ctx, r, h.Name(), set, o)
		})
		if err != nil {
			return hostErr(h.Name(), err)
		}
		r.fx.Done("kubelet reconfigured", start, "host", h.Name())
	}
	return nil
}

// waitKubeletRuns polls a node's kubelet until its configz reports every field the spec sets and
// the node is Ready.
func waitKubeletRuns(ctx context.Context, r *Run, node string, set map[string]any, o ApplyOptions) error {
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	err = kubeapi.Poll(ctx, o.pollInterval, o.Timeout, "the kubelet of "+node+" to run the spec's configuration", func(ctx context.Context) (bool, string, error) {
		running, err := c.KubeletConfigz(ctx, node)
		if err != nil {
			return false, err.Error(), nil
		}
		differs, err := drift.KubeletRunning(set, running)
		if err != nil {
			return false, "", err
		}
		if len(differs) > 0 {
			return false, strings.Join(differs, "; "), nil
		}
		return true, "", nil
	})
	if err != nil {
		return err
	}
	return c.NodesReady(ctx, []string{node}, false, o.Timeout)
}

// ApplyRuntime writes containerd's files where they differ from the spec's, node by node, and
// restarts containerd where a file other than a registry's hosts.toml changed (its containers keep
// running: the shims outlive it); the next node waits until this one is Ready again.
type ApplyRuntime struct {
	Diff    *ApplyDiff
	Options ApplyOptions
}

func (ApplyRuntime) Name() string { return "apply/containerd" }

func (a ApplyRuntime) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && len(a.Diff.runtime) == 0 {
		return false, "containerd's files match the spec on every node"
	}
	return true, ""
}

func (a ApplyRuntime) Run(ctx context.Context, r *Run) error {
	d, o := a.Diff, a.Options.withDefaults()
	if !d.observed {
		return errNotObserved
	}
	for _, h := range r.Targets() {
		rd, ok := d.runtime[h.Name()]
		if !ok {
			continue
		}
		start := time.Now()
		if _, err := h.UploadAll(ctx, rd.files); err != nil {
			return hostErr(h.Name(), err)
		}
		if rd.stale {
			args := append([]string{"remove", manifests.WrittenByMarker}, sortedKeys(r.Cluster.Spec.Images.Mirrors)...)
			if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.StaleMirrors.Args(args...)},
				[]string{"remove the hosts.toml the installer wrote for registries the spec no longer mirrors"}); err != nil {
				return hostErr(h.Name(), fmt.Errorf("remove registry mirror files: %w", err))
			}
		}
		if !rd.restart {
			continue
		}
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "daemon-reload"}}); err != nil {
			return hostErr(h.Name(), fmt.Errorf("systemctl daemon-reload: %w", err))
		}
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "restart", "containerd"}}); err != nil {
			return hostErr(h.Name(), fmt.Errorf("restart containerd: %w", err))
		}
		err := r.fx.Observe(ctx, h.Name()+"'s containerd answering and the node Ready", func(ctx context.Context) error {
			err := kubeapi.Poll(ctx, o.pollInterval, o.Timeout, "containerd on "+h.Name()+" to answer", func(ctx context.Context) (bool, string, error) {
				if _, err := h.Query(ctx, ssh.Cmd{Args: []string{"crictl", "info"}}); err != nil {
					if ssh.IsHostAccess(err) {
						return false, "", err
					}
					return false, "crictl info fails", nil
				}
				return true, "", nil
			})
			if err != nil {
				return err
			}
			c, err := r.client(ctx)
			if err != nil {
				return err
			}
			return c.NodesReady(ctx, []string{h.Name()}, false, o.Timeout)
		})
		if err != nil {
			return hostErr(h.Name(), err)
		}
		r.fx.Done("containerd reconfigured", start, "host", h.Name())
	}
	return nil
}

// ApplyNodeMeta sets each node's labels and taints from the spec through the API, recording in
// two annotations which ones are the installer's.
type ApplyNodeMeta struct {
	Diff *ApplyDiff
}

func (ApplyNodeMeta) Name() string { return "apply/nodes" }

func (a ApplyNodeMeta) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && len(a.Diff.nodeMeta) == 0 {
		return false, "every node has the spec's labels and taints"
	}
	return true, ""
}

func (a ApplyNodeMeta) Run(ctx context.Context, r *Run) error {
	d := a.Diff
	if !d.observed {
		return errNotObserved
	}
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	for _, h := range r.Targets() {
		if _, ok := d.nodeMeta[h.Name()]; !ok {
			continue
		}
		// Read again: the node changed since it was observed (the kubelet's restart, its status).
		n, err := c.Node(ctx, h.Name())
		if err != nil {
			return hostErr(h.Name(), err)
		}
		m := nodeMetaFor(r, h, n, d.registeredFlags(h.Name()))
		if m == nil {
			continue
		}
		labels := strings.Join(slices.Sorted(maps.Keys(h.Spec.Labels)), ",")
		var taintKeys []string
		for _, t := range kubeadm.Taints(&r.Cluster.Spec, h.Spec) {
			taintKeys = append(taintKeys, drift.TaintKey(t))
		}
		taints := strings.Join(taintKeys, ",")
		meta := kubeapi.NodeMeta{Labels: m.labels, Taints: m.taints,
			Annotations: map[string]*string{ManagedLabelsAnnotation: &labels, ManagedTaintsAnnotation: &taints}}
		if err := r.fx.SetNodeMeta(ctx, r.api, h.Name(), m.resourceVersion, meta, m.removedLabels, m.lines); err != nil {
			return hostErr(h.Name(), err)
		}
	}
	return nil
}

// ApplyLeftovers puts back, on every control plane, the static pod manifests an interrupted apply
// or certs renew held aside while their pod stopped (the hold directory is the installer's own, so
// this only undoes its unfinished work): those pods run again as they were before, the API answers,
// and the observation that follows sees the cluster as it is.
type ApplyLeftovers struct {
	Options ApplyOptions
}

func (ApplyLeftovers) Name() string { return "apply/leftovers" }

func (a ApplyLeftovers) Run(ctx context.Context, r *Run) error {
	o := a.Options.withDefaults()
	return ForEachHost(ctx, connected(r.TargetsWithRole(v1alpha1.RoleControlPlane)), r.Concurrency, func(ctx context.Context, h *Host) error {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.HeldManifests.Args("list")})
		if err != nil {
			return fmt.Errorf("list the manifests held aside: %w", err)
		}
		held := strings.Fields(string(res.Stdout))
		if len(held) == 0 {
			return nil
		}
		r.Log.Warn("an interrupted run held these static pods' manifests aside; putting them back", "host", h.Name(), "pods", strings.Join(held, ","))
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.HeldManifests.Args("restore")},
			[]string{"put back the manifests of " + strings.Join(held, ", ") + " that an interrupted run held in " + restartHoldDir}); err != nil {
			return fmt.Errorf("put back the held manifests: %w", err)
		}
		if !slices.Contains(held, "kube-apiserver") {
			return nil
		}
		return r.fx.Observe(ctx, h.Name()+"'s apiserver ready", func(ctx context.Context) error {
			return h.waitReadyz(ctx, o.pollInterval, o.Timeout)
		})
	})
}
