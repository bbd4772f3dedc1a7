package phases

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/versions"
)

// UpgradeNodes upgrades the kubelet of every node of one role: control planes one at a time,
// workers in batches of MaxUnavailable. Per node, the steps of nodeUpgrade.steps. Before each batch
// every node must be Ready: a batch never drains into a cluster that has already lost a node.
type UpgradeNodes struct {
	st      *upgradeState
	Role    v1alpha1.Role
	Options UpgradeOptions
}

func (u UpgradeNodes) Name() string { return roleStep("upgrade/nodes", u.Role) }

func (u UpgradeNodes) ShouldRun(r *Run) (bool, string) {
	p := u.st
	if why := p.doneReason(); why != "" {
		return false, why
	}
	for _, h := range r.TargetsWithRole(u.Role) {
		if !p.checked || !p.nodeDone(h) {
			return true, ""
		}
	}
	return false, "every " + string(u.Role) + " runs " + p.Target
}

func (u UpgradeNodes) Run(ctx context.Context, r *Run) error {
	o := u.Options.withDefaults()
	p := u.st
	if !p.checked {
		return errNotChecked
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
	var lb *apiLB
	if u.Role == v1alpha1.RoleControlPlane {
		if lb = newAPILB(r, "upgrade", o.WaitTimeout); lb != nil {
			if err := lb.finishLeftovers(ctx); err != nil {
				return err
			}
		}
		// The VIP holder last: the VIP then moves once, to a control plane already done.
		var err error
		if pending, err = lb.lastHolder(ctx, pending); err != nil {
			return err
		}
	}
	for len(pending) > 0 {
		n := min(size, len(pending))
		batch := pending[:n]
		pending = pending[n:]
		err := r.fx.Observe(ctx, "every node alive before draining "+hostNames(batch), func(ctx context.Context) error {
			c, err := r.client(ctx)
			if err != nil {
				return err
			}
			if err := c.NodesAlive(ctx, all, leaseStale, o.WaitTimeout); err != nil {
				return fmt.Errorf("before draining %s: %w", hostNames(batch), err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := ForEachHost(ctx, batch, n, func(ctx context.Context, h *Host) error {
			return (&nodeUpgrade{r: r, h: h, p: p, st: p.Nodes[h.Name()], o: o, lb: lb}).run(ctx)
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

// nodeUpgrade is one node's upgrade: what its steps share.
type nodeUpgrade struct {
	r  *Run
	h  *Host
	p  *upgradeState
	st *nodeStatus
	o  UpgradeOptions
	// keepCordoned: someone else cordoned the node; it is drained but left cordoned.
	keepCordoned bool
	// swapped: the kubelet binary changed in this run, so it must restart.
	swapped bool
	// restart: the kubelet's files changed, or it does not report the target yet.
	restart bool
	// runtimeReplaced: containerd was replaced under the kubelet, which restarts to reconnect.
	runtimeReplaced bool
	// lb takes a control plane out of the API's load balancer while its kubelet restarts (nil:
	// a worker, or nothing to take it out of).
	lb *apiLB
}

// nodeStep is one step of a node's upgrade; skip, when set, says it has nothing to do.
type nodeStep struct {
	name string
	skip func() bool
	run  func(ctx context.Context) error
	// restarts: the step may restart the runtime or the kubelet, and with it a control plane's
	// static pods (a new kubelet re-creates them).
	restarts bool
}

// steps is a node's upgrade, in order. The runtime is replaced first, drained: the new kubelet may
// need it (1.36 and later refuse containerd 1.x). kubeadm upgrade node must succeed before the
// kubelet is swapped: it rewrites the kubelet's flags (a 1.35 kubelet refuses the flags 1.34's
// kubeadm wrote).
func (n *nodeUpgrade) steps() []nodeStep {
	return []nodeStep{
		{name: "read the node", run: n.read},
		{name: "cordon", skip: func() bool { return n.keepCordoned }, run: n.cordon},
		{name: "drain", run: n.drain},
		{name: "containerd", skip: func() bool { return n.p.runtimeDone(n.h) }, run: n.replaceRuntime, restarts: true},
		{name: "kubeadm upgrade node", skip: n.kubeadmNodeDone, run: n.kubeadmNode, restarts: true},
		{name: "kubeadm, kubelet and kubectl", run: n.install, restarts: true},
		{name: "restart the kubelet", skip: func() bool { return !n.swapped && !n.restart && !n.runtimeReplaced }, run: n.restartKubelet, restarts: true},
		{name: "wait for the new version", run: n.waitVersion, restarts: true},
		{name: "uncordon", skip: func() bool { return n.keepCordoned }, run: n.uncordon},
	}
}

// run runs the steps in order; on a control plane, the ones that may restart its static pods run
// with it out of the API's load balancer.
func (n *nodeUpgrade) run(ctx context.Context) error {
	start := time.Now()
	steps := n.steps()
	for i := 0; i < len(steps); {
		if !steps[i].restarts || n.lb == nil {
			if err := steps[i].runUnlessSkipped(ctx); err != nil {
				return err
			}
			i++
			continue
		}
		j := i
		for j < len(steps) && steps[j].restarts {
			j++
		}
		group := steps[i:j]
		// A new kubelet re-creates every static pod, haproxy's and keepalived's too: the VIP leaves.
		err := n.lb.outOfService(ctx, n.h, "its kubelet's upgrade", true, func(ctx context.Context) error {
			for _, s := range group {
				if err := s.runUnlessSkipped(ctx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		i = j
	}
	n.r.fx.Done("upgrade of the node", start, "host", n.h.Name(), "version", n.p.Target)
	return nil
}

func (s nodeStep) runUnlessSkipped(ctx context.Context) error {
	if s.skip != nil && s.skip() {
		return nil
	}
	return s.run(ctx)
}

// read re-reads the host (it may have been restarted or changed since the run began) and whether
// someone else cordoned the node. A dry run keeps the facts its recorded steps would have made true.
func (n *nodeUpgrade) read(ctx context.Context) error {
	h := n.h
	err := n.r.fx.Observe(ctx, "the facts of "+h.Name(), func(ctx context.Context) error {
		f, err := facts.Gather(ctx, h.Runner())
		if err != nil {
			return err
		}
		h.observed(f)
		return nil
	})
	if err != nil {
		return err
	}
	c, err := n.r.client(ctx)
	if err != nil {
		return err
	}
	node, err := c.Node(ctx, h.Name())
	if err != nil {
		return err
	}
	n.keepCordoned = node.Spec.Unschedulable && node.Annotations[kubeapi.CordonedBy] != cordonReason
	return nil
}

func (n *nodeUpgrade) cordon(ctx context.Context) error {
	if err := n.r.fx.Cordon(ctx, n.r.api, n.h.Name(), cordonReason); err != nil {
		return err
	}
	n.st.Cordoned = true
	return nil
}

func (n *nodeUpgrade) drain(ctx context.Context) error {
	return n.r.fx.Drain(ctx, n.r.api, n.h.Name(), kubeapi.DrainOptions{Timeout: n.o.DrainTimeout, Force: n.o.Force, Interval: n.o.pollInterval,
		Report: func(msg string) { n.r.Log.Warn(msg) }})
}

// kubeadmNodeDone: a control plane's kubeadm ran in upgrade/control-planes; a worker's kubelet at
// the target proves it ran, since the kubelet is swapped only after it succeeded.
func (n *nodeUpgrade) kubeadmNodeDone() bool {
	return n.h.Spec.Role == v1alpha1.RoleControlPlane || n.h.Facts.KubeletVersion == n.p.Target
}

// replaceRuntime puts the spec's containerd release and runc on the drained node, writes the
// runtime's files for it (config version 3, the unit) and restarts it; the kubelet restarts after
// it. Running containers (static pods, DaemonSets) survive in their shims.
func (n *nodeUpgrade) replaceRuntime(ctx context.Context) error {
	h, s := n.h, &n.r.Cluster.Spec
	from := h.now().ContainerdVersion
	d, err := newDownloader(s, n.r.Inputs)
	if err != nil {
		return err
	}
	if err := replaceContainerd(ctx, h, d, versions.Containerd().Runc); err != nil {
		return err
	}
	files, err := hostFiles(h, s, n.r.Inputs, h.Facts.AdminConfPresent)
	if err != nil {
		return err
	}
	if _, err := h.UploadAll(ctx, files.Runtime); err != nil {
		return err
	}
	if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "daemon-reload"}}); err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w", err)
	}
	if err := ensureService(ctx, h, "containerd", true); err != nil {
		return err
	}
	n.runtimeReplaced = true
	n.r.Log.Info("upgrade: containerd replaced", "host", h.Name(), "from", from, "to", s.ContainerRuntime.Containerd.Version)
	return nil
}

func (n *nodeUpgrade) kubeadmNode(ctx context.Context) error {
	if err := prepareKubeadm(ctx, n.h, &n.r.Cluster.Spec, n.r.Inputs); err != nil {
		return err
	}
	start := time.Now()
	if _, err := n.h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "upgrade", "node", "--config", kubeadm.UpgradeConfigPath}, Stdout: newKubeadmProgress(n.r.Log, n.h.Name())}); err != nil {
		return fmt.Errorf("kubeadm upgrade node: %w", err)
	}
	n.r.fx.Done("kubeadm upgrade node", start, "host", n.h.Name())
	return nil
}

// install puts kubeadm (if a control plane's was not already), kubelet and kubectl at the target,
// with the kubelet's files (installKubernetes, the step create uses). A control plane's static pods
// must be at the target first.
func (n *nodeUpgrade) install(ctx context.Context) error {
	h, s := n.h, &n.r.Cluster.Spec
	if h.Spec.Role == v1alpha1.RoleControlPlane && n.st.ControlPlane != n.p.Target {
		return fmt.Errorf("its control plane runs %s, not %s: kubeadm upgrade did not complete", n.st.ControlPlane, n.p.Target)
	}
	n.swapped = h.Facts.KubeletVersion != n.p.Target
	files, err := hostFiles(h, s, n.r.Inputs, h.Facts.AdminConfPresent)
	if err != nil {
		return err
	}
	changed, err := installKubernetes(ctx, h, s, n.r.Inputs, files, n.swapped || n.st.Kubelet != n.p.Target)
	if err != nil {
		return err
	}
	n.restart = changed || n.st.Kubelet != n.p.Target
	return nil
}

// restartKubelet: installKubernetes had systemd re-read the units first.
func (n *nodeUpgrade) restartKubelet(ctx context.Context) error {
	_, err := n.h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "restart", "kubelet"}})
	return err
}

// waitVersion waits until the node reports the target and, on a control plane, the kubelet has
// re-created the local apiserver and it answers.
func (n *nodeUpgrade) waitVersion(ctx context.Context) error {
	h := n.h
	return n.r.fx.Observe(ctx, h.Name()+" at "+n.p.Target, func(ctx context.Context) error {
		c, err := n.r.client(ctx)
		if err != nil {
			return err
		}
		if err := c.NodeVersion(ctx, h.Name(), n.p.Target, n.o.WaitTimeout); err != nil {
			return err
		}
		n.st.Kubelet = n.p.Target
		if h.Spec.Role == v1alpha1.RoleControlPlane {
			return h.waitLocalAPIServer(ctx, n.o.WaitTimeout)
		}
		return nil
	})
}

func (n *nodeUpgrade) uncordon(ctx context.Context) error {
	if err := n.r.fx.Uncordon(ctx, n.r.api, n.h.Name()); err != nil {
		return err
	}
	n.st.Cordoned = false
	return nil
}

// localReadyz asks the host's own apiserver whether it is ready.
var localReadyz = []string{"curl", "-fsk", "--max-time", "5", "https://" + constants.LocalAPIServer + "/readyz"}

// waitReadyz polls until the host's own apiserver answers /readyz, at most timeout.
func (h *Host) waitReadyz(ctx context.Context, interval, timeout time.Duration) error {
	return kubeapi.Poll(ctx, interval, timeout, "the apiserver on "+h.Name()+" ready", func(ctx context.Context) (bool, string, error) {
		if _, err := h.Query(ctx, ssh.Cmd{Args: localReadyz}); err != nil {
			return false, "/readyz: " + err.Error(), nil
		}
		return true, "", nil
	})
}

// recreateGrace is how long after a kubelet restart the installer waits for it to re-create a
// static pod before deciding it keeps the old one (a kubelet whose pod hashes did not change).
// Measured: a minor upgrade re-creates every static pod a few seconds after the node reports its
// new version.
const recreateGrace = 90 * time.Second

// waitLocalAPIServer waits until the new kubelet has re-created every control-plane static pod (its
// ready sandbox is younger than the kubelet) and the local apiserver answers /readyz. All of them:
// an apiserver that is ready before the kubelet replaces etcd under it stops answering again (a
// single control plane's API then fails the next write).
func (h *Host) waitLocalAPIServer(ctx context.Context, timeout time.Duration) error {
	return kubeapi.Poll(ctx, 2*time.Second, timeout, "the control plane on "+h.Name()+" ready after the kubelet restart", func(ctx context.Context) (bool, string, error) {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.KubeletPods.Args()})
		if err != nil {
			return false, "crictl: " + err.Error(), nil
		}
		started, newest, err := parseStaticPods(res.Stdout)
		if err != nil {
			return false, err.Error(), nil
		}
		if waiting := notRecreated(started, newest, time.Since(started) < recreateGrace); waiting != "" {
			return false, waiting, nil
		}
		if _, err := h.Query(ctx, ssh.Cmd{Args: localReadyz}); err != nil {
			return false, "/readyz: " + err.Error(), nil
		}
		return true, "", nil
	})
}

// notRecreated names what still keeps the control plane from being the new kubelet's: a static pod
// with no ready sandbox, or (within the grace) one whose sandbox is older than the kubelet.
func notRecreated(started time.Time, newest map[string]time.Time, inGrace bool) string {
	var missing, old []string
	for _, c := range constants.ControlPlaneComponents {
		switch t, ok := newest[c]; {
		case !ok:
			missing = append(missing, c)
		case inGrace && t.Before(started):
			old = append(old, c)
		}
	}
	switch {
	case len(missing) > 0:
		return "no ready pod of " + strings.Join(missing, ", ")
	case len(old) > 0:
		return "the kubelet has not re-created " + strings.Join(old, ", ") + " yet"
	}
	return ""
}

// parseStaticPods reads kubelet-pods.sh's output: the kubelet's start and, per component, the
// newest ready sandbox.
func parseStaticPods(out []byte) (started time.Time, newest map[string]time.Time, err error) {
	first, rest, _ := strings.Cut(string(out), "\n")
	sec, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return started, nil, fmt.Errorf("kubelet start time %q: %w", first, err)
	}
	started = time.Unix(sec, 0)
	var pods struct {
		Items []struct {
			CreatedAt string            `json:"createdAt"`
			Labels    map[string]string `json:"labels"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(rest), &pods); err != nil {
		return started, nil, fmt.Errorf("crictl pods: %w", err)
	}
	newest = map[string]time.Time{}
	for _, p := range pods.Items {
		ns, err := strconv.ParseInt(p.CreatedAt, 10, 64)
		if err != nil {
			continue
		}
		c := p.Labels["component"]
		if t := time.Unix(0, ns); c != "" && t.After(newest[c]) {
			newest[c] = t
		}
	}
	return started, newest, nil
}
