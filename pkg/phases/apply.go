package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// ApplyDiff is what `installer apply` found between the spec and the running cluster: the changes
// it makes, host by host, and the ones it refuses to make. The observe phase fills it; the
// reconcile phases act on what it holds for each host.
type ApplyDiff struct {
	Changes  []drift.Change
	Refusals []drift.Refusal
	// Skipped are the hosts that could not be reached and were left out (--skip-unreachable:
	// ConnectReachable fills it); nothing is observed or changed on them.
	Skipped []string

	mu sync.Mutex
	// observed: ApplyObserve ran to the end.
	observed bool
	// kubeadmConfig and kubeletConfig: the cluster's stored configurations differ from the spec's.
	kubeadmConfig, kubeletConfig bool
	// lbLeftovers: an interrupted run left a control plane out of the API's load balancer.
	lbLeftovers bool
	// controlPlanes: per control plane, what its static pods need.
	controlPlanes map[string]*controlPlaneDrift
	// kubelet: nodes whose kubelet configuration differs.
	kubelet map[string]bool
	// runtime: per node, the containerd files that differ, and whether containerd must restart.
	runtime map[string]runtimeDrift
	// nodeMeta: per node, its labels and taints as they must become.
	nodeMeta map[string]nodeMetaDrift
	// join: hosts of the spec that are not nodes yet, in spec order.
	join []string
	// removal: the hosts marked remove that are still part of the cluster.
	removal *removal
	// lb: per control plane, its API load balancer files that differ from the spec's (the
	// control-plane set changed).
	lb map[string][]manifests.File
	// addons: the cluster files (cni.yaml, ccm.yaml, addons/*.yaml) with an object to create or
	// change, in create's order.
	addons []manifests.File
	// registered: per node, the kubelet flags it was joined with (kubeadm-flags.env, which apply
	// never changes), read once.
	registered map[string]map[string]string
}

// controlPlaneDrift is what one control plane's static pods need.
type controlPlaneDrift struct {
	// components whose manifest kubeadm must render again (kubeadm's phase names: apiserver,
	// controller-manager, scheduler).
	components []string
	// certificate: the apiserver's serving certificate lacks a wanted name or holds a removed one.
	certificate bool
}

type runtimeDrift struct {
	files []manifests.File
	// stale: the spec no longer mirrors these registries; their hosts.toml goes.
	stale   bool
	restart bool
}

type nodeMetaDrift struct {
	resourceVersion string
	labels          map[string]string
	removedLabels   []string
	taints          []corev1.Taint
	lines           []string
}

// Empty reports whether apply has nothing to change.
func (d *ApplyDiff) Empty() bool { return len(d.Changes) == 0 }

func (d *ApplyDiff) add(c drift.Change) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Changes = append(d.Changes, c)
}

func (d *ApplyDiff) refuse(field, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Refusals = append(d.Refusals, drift.Refusal{Field: field, Reason: reason})
}

// errNotObserved guards the reconcile phases: they act only on a completed observation.
var errNotObserved = errors.New("apply: the cluster was not observed")

// The annotations that record which labels and taints of a node are the installer's (set from
// the spec by apply), so a label removed from the spec is removed from the node and nobody else's.
const (
	ManagedLabelsAnnotation = "installer.dev/managed-labels"
	ManagedTaintsAnnotation = "installer.dev/managed-taints"
)

type applyComponent struct{ pod, phase, comm string }

// kubeadm's phase name and the process name (comm, at most 15 characters) of each control-plane
// component apply re-renders, by static pod name.
var applyComponents = []applyComponent{
	{"kube-apiserver", "apiserver", "kube-apiserver"},
	{"kube-controller-manager", "controller-manager", "kube-controller"},
	{"kube-scheduler", "scheduler", "kube-scheduler"},
}

// ApplyObserve reads the running cluster and compares it with the spec: kubeadm's stored
// ClusterConfiguration and KubeletConfiguration, each control plane's static pod manifests and
// apiserver certificate, each node's kubelet configuration, containerd files, labels and taints,
// the nodes against the spec's hosts, and the objects of the CNI, CCM and add-on files (a
// server-side dry-run apply). It changes nothing; what differs goes into Diff.
type ApplyObserve struct {
	Diff *ApplyDiff
	// Spec is the spec as written, hosts marked remove included (the run's own cluster is the spec
	// without them); nil: none is marked.
	Spec *v1alpha1.Cluster
}

func (ApplyObserve) Name() string { return "apply/observe" }

func (o ApplyObserve) Run(ctx context.Context, r *Run) error {
	d := o.Diff
	d.controlPlanes, d.kubelet, d.runtime, d.nodeMeta = map[string]*controlPlaneDrift{}, map[string]bool{}, map[string]runtimeDrift{}, map[string]nodeMetaDrift{}
	d.registered, d.lb = map[string]map[string]string{}, map[string][]manifests.File{}
	c, err := r.client(ctx)
	if err != nil {
		return err
	}
	have, err := c.KubeadmConfig(ctx)
	if err != nil {
		return err
	}
	want, err := kubeadm.ClusterConfiguration(&r.Cluster.Spec)
	if err != nil {
		return err
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	if err := o.refusals(ctx, r, c, want, have, nodes); err != nil || len(d.Refusals) > 0 {
		return err
	}
	if err := o.clusterWide(ctx, r, c, want, have); err != nil {
		return err
	}
	if err := o.addons(ctx, r, c); err != nil {
		return err
	}
	if err := o.removals(ctx, r, c, nodes); err != nil || len(d.Refusals) > 0 {
		return err
	}
	if err := o.lbMembers(ctx, r); err != nil {
		return err
	}
	wantKubelet, err := kubeadm.KubeletConfiguration(&r.Cluster.Spec)
	if err != nil {
		return err
	}
	err = ForEachHost(ctx, o.nodes(r), r.Concurrency, func(ctx context.Context, h *Host) error {
		if h.Spec.Role == v1alpha1.RoleControlPlane {
			if err := o.controlPlane(ctx, h, want, have); err != nil {
				return err
			}
		}
		if err := o.kubelet(ctx, h, wantKubelet); err != nil {
			return err
		}
		if err := o.runtime(ctx, r, h); err != nil {
			return err
		}
		n := nodes[h.Name()]
		return o.nodeMeta(ctx, r, h, &n)
	})
	if err != nil {
		return err
	}
	d.sort(r)
	d.observed = true
	return nil
}

// refusals records what the spec asks that apply does not do: cluster-wide settings fixed at
// creation or changed by other commands, hosts added, removed or with another role, kube-proxy's
// configuration, the kubelets' flags.
func (o ApplyObserve) refusals(ctx context.Context, r *Run, c *kubeapi.Client, want, have *kubeadmv1beta4.ClusterConfiguration, nodes map[string]corev1.Node) error {
	d, spec := o.Diff, &r.Cluster.Spec
	for _, ref := range drift.ClusterConfig(want, have) {
		d.refuse(ref.Field, ref.Reason)
	}
	for i, h := range spec.Hosts {
		if slices.Contains(d.Skipped, h.Name) {
			continue
		}
		n, ok := nodes[h.Name]
		switch {
		case !ok && h.Role == v1alpha1.RoleWorker:
			d.join = append(d.join, h.Name)
			d.add(drift.Change{Host: h.Name, Component: "node", Lines: []string{"+ joined as a worker"},
				Cost: "containerd, the kubelet and kubeadm installed, `kubeadm join` with a fresh bootstrap token (the `join node` workflow), once the changes to the nodes are made"})
			continue
		case !ok:
			d.join = append(d.join, h.Name)
			d.add(drift.Change{Host: h.Name, Component: "node", Lines: []string{"+ joined as a control plane"},
				Cost: "its load balancer files and the cluster's PKI laid down, `kubeadm join --control-plane` (etcd grows by one member), once the changes to the nodes are made; then every control plane's haproxy balances it"})
			continue
		}
		_, isCP := n.Labels[kubeadm.ControlPlaneTaintKey]
		if isCP != (h.Role == v1alpha1.RoleControlPlane) {
			d.refuse(fmt.Sprintf("spec.hosts[%d].role", i), fmt.Sprintf("node %s is a %s in the cluster: apply does not change a node's role", h.Name, roleOf(isCP)))
		}
	}
	for _, name := range sortedKeys(nodes) {
		if _, ok := spec.Host(name); ok {
			continue
		}
		if o.Spec != nil {
			if h, ok := o.Spec.Spec.Host(name); ok && h.Remove {
				continue
			}
		}
		d.refuse("spec.hosts", fmt.Sprintf("node %s is in the cluster but not in the spec: apply removes a host only when the spec says so: put its entry back with remove: true", name))
	}
	wantProxy, err := kubeadm.KubeProxyConfiguration(spec)
	if err != nil {
		return err
	}
	haveProxy, err := c.KubeProxyConfig(ctx)
	if err != nil {
		return err
	}
	differs, err := drift.KubeProxyConfig(wantProxy, haveProxy)
	if err != nil {
		return err
	}
	if len(differs) > 0 {
		d.refuse("spec.kubeProxy", "apply does not change kube-proxy's configuration yet: "+strings.Join(differs, "; "))
	}
	return ForEachHost(ctx, o.nodes(r), r.Concurrency, func(ctx context.Context, h *Host) error {
		return o.kubeletFlags(ctx, r, h)
	})
}

// nodes are the run's hosts that are nodes already (not joined by this apply) and were reached
// (with --skip-unreachable, the others are left out).
func (o ApplyObserve) nodes(r *Run) []*Host {
	var out []*Host
	for _, h := range connected(r.Targets()) {
		if !slices.Contains(o.Diff.join, h.Name()) {
			out = append(out, h)
		}
	}
	return out
}

// clusterWide compares kubeadm's stored configurations with the spec's, and finds the control
// planes an interrupted run left out of the API's load balancer.
func (o ApplyObserve) clusterWide(ctx context.Context, r *Run, c *kubeapi.Client, want, have *kubeadmv1beta4.ClusterConfiguration) error {
	d := o.Diff
	if lines := clusterConfigLines(want, have); len(lines) > 0 {
		d.kubeadmConfig = true
		d.add(drift.Change{Component: "kubeadm-config", Lines: lines, Cost: "the cluster's stored ClusterConfiguration rewritten (`kubeadm init phase upload-config kubeadm`), once every control plane is done"})
	}
	wantKubelet, err := kubeadm.KubeletConfiguration(&r.Cluster.Spec)
	if err != nil {
		return err
	}
	stored, err := c.KubeletConfig(ctx)
	if err != nil {
		return err
	}
	lines, err := drift.KubeletConfig(wantKubelet, stored)
	if err != nil {
		return err
	}
	if len(lines) > 0 {
		d.kubeletConfig = true
		d.add(drift.Change{Component: "kubelet-config", Lines: lines, Cost: "the cluster's stored KubeletConfiguration rewritten (`kubeadm init phase upload-config kubelet`); new nodes take it"})
	}
	lb := d.apiLB(r, 0)
	if lb == nil {
		return nil
	}
	views, err := lb.views(ctx)
	if err != nil {
		return err
	}
	for _, v := range views {
		out, err := lb.leftOut(ctx, v)
		if err != nil {
			return err
		}
		if out {
			d.lbLeftovers = true
			d.add(drift.Change{Host: v.host.Name(), Component: "API load balancer", Lines: []string{"+ back in service (an interrupted run left it out)"},
				Cost: "put back into every control plane's haproxy and keepalived (no restart)"})
		}
	}
	return nil
}

func roleOf(controlPlane bool) string {
	if controlPlane {
		return "control plane"
	}
	return "worker"
}

// clusterConfigLines are the differences apply makes in kubeadm-config: the apiserver's names and
// the components' flags and extra volumes.
func clusterConfigLines(want, have *kubeadmv1beta4.ClusterConfiguration) []string {
	var out []string
	for _, n := range want.APIServer.CertSANs {
		if !slices.Contains(have.APIServer.CertSANs, n) {
			out = append(out, "+ apiServer.certSANs "+n)
		}
	}
	for _, n := range drift.Subtract(have.APIServer.CertSANs, want.APIServer.CertSANs) {
		out = append(out, "- apiServer.certSANs "+n)
	}
	for _, c := range []struct {
		name       string
		want, have []kubeadmv1beta4.Arg
	}{
		{"apiServer", want.APIServer.ExtraArgs, have.APIServer.ExtraArgs},
		{"controllerManager", want.ControllerManager.ExtraArgs, have.ControllerManager.ExtraArgs},
		{"scheduler", want.Scheduler.ExtraArgs, have.Scheduler.ExtraArgs},
	} {
		w, h := kubeadm.ArgsMap(c.want), kubeadm.ArgsMap(c.have)
		for _, k := range sortedKeys(w) {
			if v, ok := h[k]; !ok {
				out = append(out, fmt.Sprintf("+ %s.extraArgs --%s=%s", c.name, k, w[k]))
			} else if v != w[k] {
				out = append(out, fmt.Sprintf("~ %s.extraArgs --%s=%s (now %s)", c.name, k, w[k], v))
			}
		}
		for _, k := range sortedKeys(drift.Removed(h, w)) {
			out = append(out, fmt.Sprintf("- %s.extraArgs --%s=%s", c.name, k, h[k]))
		}
	}
	return append(out, extraVolumeLines(want, have)...)
}

// controlPlane compares h's static pods' flags and extra volumes and its apiserver certificate's
// names with the spec's. Flags, volumes and names the stored configuration had and the spec dropped
// must go too.
func (o ApplyObserve) controlPlane(ctx context.Context, h *Host, want, have *kubeadmv1beta4.ClusterConfiguration) error {
	cp := &controlPlaneDrift{}
	wantArgs := map[string][]kubeadmv1beta4.Arg{"apiserver": want.APIServer.ExtraArgs, "controller-manager": want.ControllerManager.ExtraArgs, "scheduler": want.Scheduler.ExtraArgs}
	haveArgs := map[string][]kubeadmv1beta4.Arg{"apiserver": have.APIServer.ExtraArgs, "controller-manager": have.ControllerManager.ExtraArgs, "scheduler": have.Scheduler.ExtraArgs}
	running, err := runningCommands(ctx, h)
	if err != nil {
		return err
	}
	for _, c := range applyComponents {
		path := constants.StaticPodDir + "/" + c.pod + ".yaml"
		data, err := h.ReadFile(ctx, path)
		var lines []string
		if errors.Is(err, fs.ErrNotExist) {
			// An apply (or certs renew) killed while the pod was stopping holds its manifest aside.
			held := restartHoldDir + "/" + c.pod + ".yaml"
			if _, herr := h.ReadFile(ctx, held); herr != nil {
				return fmt.Errorf("read %s: %w (and no manifest is held in %s)", path, err, restartHoldDir)
			}
			lines = []string{"+ " + path + " (an interrupted run holds it in " + restartHoldDir + ")"}
		} else if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		} else {
			pod, err := parsePod(path, data)
			if err != nil {
				return err
			}
			command := pod.Spec.Containers[0].Command
			w := kubeadm.ArgsMap(wantArgs[c.phase])
			lines = drift.Flags(w, drift.Removed(kubeadm.ArgsMap(haveArgs[c.phase]), w), command)
			lines = append(lines, drift.Mounts(componentVolumes(want, c.phase), componentVolumes(have, c.phase), pod)...)
			// A manifest rewritten in place that the kubelet has not acted on yet.
			if procs := running[c.pod]; len(lines) == 0 && (len(procs) != 1 || !maps.Equal(drift.ParseFlags(procs[0]), drift.ParseFlags(command))) {
				lines = []string{fmt.Sprintf("~ the running %s (%d processes) does not run its manifest's flags", c.pod, len(procs))}
			}
		}
		if len(lines) == 0 {
			continue
		}
		cp.components = append(cp.components, c.phase)
		o.Diff.add(drift.Change{Host: h.Name(), Component: c.pod, Lines: lines,
			Cost: c.pod + " stopped, its manifest rendered again by kubeadm, started" + outOfLBNote(c.pod)})
	}
	data, err := h.ReadFile(ctx, constants.PKIDir+"/apiserver.crt")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read apiserver.crt: %w", err)
	}
	var lines []string
	if errors.Is(err, fs.ErrNotExist) {
		// An apply killed between moving the old certificate away and kubeadm writing the new one.
		lines = []string{"+ a serving certificate (none at " + constants.PKIDir + "/apiserver.crt)"}
	} else {
		cert, err := pki.ParseCertificate(data)
		if err != nil {
			return fmt.Errorf("apiserver.crt: %w", err)
		}
		lines = drift.SANs(want.APIServer.CertSANs, drift.Subtract(have.APIServer.CertSANs, want.APIServer.CertSANs), cert)
	}
	if len(lines) > 0 {
		cp.certificate = true
		o.Diff.add(drift.Change{Host: h.Name(), Component: "apiserver certificate", Lines: lines,
			Cost: "new serving certificate signed by the cluster CA (the old one kept in " + ApplyBackupDir + "); kube-apiserver restarted" + outOfLBNote("kube-apiserver")})
	}
	if len(cp.components) > 0 || cp.certificate {
		o.Diff.mu.Lock()
		o.Diff.controlPlanes[h.Name()] = cp
		o.Diff.mu.Unlock()
	}
	return nil
}

func outOfLBNote(pod string) string {
	if pod == "kube-apiserver" {
		return " (the control plane leaves the API's load balancer meanwhile, when there is one)"
	}
	return ""
}

// runningCommands are the command lines of the control-plane components running on h, by static
// pod name.
func runningCommands(ctx context.Context, h *Host) (map[string][][]string, error) {
	var comms []string
	for _, c := range applyComponents {
		comms = append(comms, c.comm)
	}
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Processes.Args(comms...)})
	if err != nil {
		return nil, fmt.Errorf("list the control plane's processes: %w", err)
	}
	out := map[string][][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// The pid, then the command line, whose binary is named as its static pod.
		if pod := path.Base(f[1]); slices.ContainsFunc(applyComponents, func(c applyComponent) bool { return c.pod == pod }) {
			out[pod] = append(out[pod], f[1:])
		}
	}
	return out, nil
}

// restartHoldDir is where restart-static-pod.sh and render-static-pod.sh keep a manifest while its
// pod stops.
const restartHoldDir = constants.InstallerDataDir + "/restart"

// manifestCommand reads a static pod manifest's command line.
func manifestCommand(ctx context.Context, h *Host, pod string) ([]string, error) {
	path := constants.StaticPodDir + "/" + pod + ".yaml"
	data, err := h.ReadFile(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parseCommand(path, data)
}

func parseCommand(path string, data []byte) ([]string, error) {
	p, err := parsePod(path, data)
	if err != nil {
		return nil, err
	}
	return p.Spec.Containers[0].Command, nil
}

// kubeletFlags refuses a spec whose kubelet flags (spec.kubelet.extraArgs, node-ip, the cloud
// provider) differ from those h's kubelet was joined with: apply does not rewrite kubeadm-flags.env.
func (o ApplyObserve) kubeletFlags(ctx context.Context, r *Run, h *Host) error {
	data, err := h.ReadFile(ctx, constants.KubeadmFlagsFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", constants.KubeadmFlagsFile, err)
	}
	have := parseKubeadmFlags(data)
	o.Diff.mu.Lock()
	o.Diff.registered[h.Name()] = have
	o.Diff.mu.Unlock()
	want := kubeadm.KubeletFlags(&r.Cluster.Spec, h.Spec)
	var differs []string
	for _, k := range sortedKeys(want) {
		if v, ok := have[k]; !ok || v != want[k] {
			differs = append(differs, fmt.Sprintf("--%s=%s (%s has %s)", k, want[k], constants.KubeadmFlagsFile, quoteOrNone(v, ok)))
		}
	}
	if len(differs) > 0 {
		o.Diff.refuse("spec.kubelet.extraArgs", fmt.Sprintf("host %s: apply does not change the kubelet's flags yet: %s", h.Name(), strings.Join(differs, ", ")))
	}
	return nil
}

func quoteOrNone(v string, ok bool) string {
	if !ok {
		return "none"
	}
	return v
}

// parseKubeadmFlags reads kubeadm-flags.env: KUBELET_KUBEADM_ARGS="--name=value ...".
func parseKubeadmFlags(data []byte) map[string]string {
	line := strings.TrimSpace(string(data))
	line = strings.Trim(strings.TrimPrefix(line, "KUBELET_KUBEADM_ARGS="), `"`)
	return drift.ParseFlags(strings.Fields(line))
}

// kubelet compares the node's kubelet configuration file with the spec's.
func (o ApplyObserve) kubelet(ctx context.Context, h *Host, want map[string]any) error {
	data, err := h.ReadFile(ctx, constants.KubeletConfigFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", constants.KubeletConfigFile, err)
	}
	lines, err := drift.KubeletConfig(want, data)
	if err != nil {
		return fmt.Errorf("%s: %w", constants.KubeletConfigFile, err)
	}
	if len(lines) == 0 {
		return nil
	}
	o.Diff.mu.Lock()
	o.Diff.kubelet[h.Name()] = true
	o.Diff.mu.Unlock()
	o.Diff.add(drift.Change{Host: h.Name(), Component: "kubelet", Lines: lines,
		Cost: "the node's kubelet configuration rewritten from kubelet-config (`kubeadm upgrade node phase kubelet-config`), the kubelet restarted (its pods keep running)"})
	return nil
}

// runtime compares containerd's files on h with the spec's: its configuration, registry mirrors,
// proxy drop-in and unit. A registry's hosts.toml is read at each pull; anything else needs a
// restart of containerd.
func (o ApplyObserve) runtime(ctx context.Context, r *Run, h *Host) error {
	files, err := hostFiles(h, &r.Cluster.Spec, r.Inputs, h.Facts.AdminConfPresent)
	if err != nil {
		return err
	}
	var rd runtimeDrift
	var lines []string
	for _, f := range files.Runtime {
		st, err := h.fileState(ctx, f.Path)
		if err != nil {
			return err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		switch {
		case !st.Exists:
			lines = append(lines, "+ "+f.Path)
		case st.SHA256 != f.SHA256() || st.Mode != mode:
			lines = append(lines, "~ "+f.Path)
		default:
			continue
		}
		rd.files = append(rd.files, f)
		if !strings.HasSuffix(f.Path, "/hosts.toml") {
			rd.restart = true
		}
	}
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.StaleMirrors.Args(append([]string{"list", manifests.WrittenByMarker}, sortedKeys(r.Cluster.Spec.Images.Mirrors)...)...)})
	if err != nil {
		return fmt.Errorf("list the registry mirror files: %w", err)
	}
	for _, p := range strings.Fields(string(res.Stdout)) {
		lines = append(lines, "- "+p)
		rd.stale = true
	}
	if len(rd.files) == 0 && !rd.stale {
		return nil
	}
	cost := "registry mirror files changed; containerd reads them at each pull (no restart)"
	if rd.restart {
		cost = "written, containerd restarted (its containers keep running)"
	}
	o.Diff.mu.Lock()
	o.Diff.runtime[h.Name()] = rd
	o.Diff.mu.Unlock()
	o.Diff.add(drift.Change{Host: h.Name(), Component: "containerd", Lines: lines, Cost: cost})
	return nil
}

// nodeMeta compares the node's labels and taints with the host's in the spec.
func (o ApplyObserve) nodeMeta(ctx context.Context, r *Run, h *Host, n *corev1.Node) error {
	m := nodeMetaFor(r, h, n, o.Diff.registeredFlags(h.Name()))
	if m == nil {
		return nil
	}
	o.Diff.mu.Lock()
	o.Diff.nodeMeta[h.Name()] = *m
	o.Diff.mu.Unlock()
	o.Diff.add(drift.Change{Host: h.Name(), Component: "node", Lines: m.lines, Cost: "the Node object updated through the API (no restart)"})
	return nil
}

func (d *ApplyDiff) registeredFlags(host string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.registered[host]
}

// nodeMetaFor is what node n's labels and taints must become for host h, nil when they are right.
// The installer's own are those the managed annotations name, else those the kubelet registered
// the node with (registered: its kubeadm-flags.env) and kubeadm's control-plane taint; no other
// is touched.
func nodeMetaFor(r *Run, h *Host, n *corev1.Node, registered map[string]string) *nodeMetaDrift {
	managedLabels, managedTaints := splitList(n.Annotations[ManagedLabelsAnnotation]), splitList(n.Annotations[ManagedTaintsAnnotation])
	_, labelsRecorded := n.Annotations[ManagedLabelsAnnotation]
	_, taintsRecorded := n.Annotations[ManagedTaintsAnnotation]
	if !labelsRecorded || !taintsRecorded {
		if !labelsRecorded {
			for _, kv := range splitList(registered["node-labels"]) {
				k, _, _ := strings.Cut(kv, "=")
				managedLabels = append(managedLabels, k)
			}
		}
		if !taintsRecorded {
			managedTaints = append(managedTaints, kubeadm.ControlPlaneTaintKey+":"+string(corev1.TaintEffectNoSchedule))
			for _, t := range splitList(registered["register-with-taints"]) {
				kv, effect, _ := strings.Cut(t, ":")
				k, _, _ := strings.Cut(kv, "=")
				managedTaints = append(managedTaints, k+":"+effect)
			}
		}
	}
	labelLines, labels := drift.Labels(h.Spec.Labels, managedLabels, n.Labels)
	taintLines, taints := drift.Taints(kubeadm.Taints(&r.Cluster.Spec, h.Spec), managedTaints, n.Spec.Taints)
	if len(labelLines) == 0 && len(taintLines) == 0 {
		return nil
	}
	m := &nodeMetaDrift{resourceVersion: n.ResourceVersion, lines: append(labelLines, taintLines...), labels: labels, taints: taints}
	if labels == nil {
		m.labels = n.Labels
	}
	if taints == nil {
		m.taints = n.Spec.Taints
	}
	for k := range n.Labels {
		if _, ok := m.labels[k]; !ok {
			m.removedLabels = append(m.removedLabels, k)
		}
	}
	slices.Sort(m.removedLabels)
	return m
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// sort orders the changes as they are printed and made: cluster-wide first, then hosts in spec
// order, each host's in the order reconcile makes them.
func (d *ApplyDiff) sort(r *Run) {
	rank := map[string]int{"": -1}
	for i, n := range r.order {
		rank[n] = i
	}
	if d.removal != nil {
		for i, n := range d.removal.hosts {
			rank[n] = len(r.order) + i // hosts marked remove are not apply's own: last
		}
	}
	comp := map[string]int{"kubeadm-config": 0, "kubelet-config": 1, "API load balancer": 2, "apiserver certificate": 2, "kube-apiserver": 3, "kube-controller-manager": 4, "kube-scheduler": 5, "kubelet": 6, "containerd": 7, "node": 8, clusterFilesComponent: 9}
	slices.SortStableFunc(d.Changes, func(a, b drift.Change) int {
		if rank[a.Host] != rank[b.Host] {
			return rank[a.Host] - rank[b.Host]
		}
		return comp[a.Component] - comp[b.Component]
	})
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
