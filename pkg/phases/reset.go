package phases

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/guard"
	"installer.dev/installer/pkg/kubeapi"
)

// ResetOptions tune the reset workflow.
type ResetOptions struct {
	// DrainTimeout bounds each node's drain; a pod a PodDisruptionBudget still protects then fails
	// that node's reset (default 5 minutes).
	DrainTimeout time.Duration
	// Force also deletes pods no controller manages while draining.
	Force bool
	// beforeControlPlane runs after a control plane's drain, before its reset (apply takes it out of
	// the API's load balancer there); survivor is the control plane that checks etcd's members.
	beforeControlPlane func(ctx context.Context, r *Run, h, survivor *Host) error
}

// Reset is the workflow of `installer reset` (DESIGN.md §3). The run's targets are the hosts to
// reset; for a reset of some nodes only, the other control planes are added as read-only hosts (one
// of them reaches the cluster API and etcd while the targets leave). Workers go first, then the
// control planes one at a time, the first control plane last.
func Reset(o ResetOptions) []Phase {
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Minute
	}
	st := &resetState{unreachable: map[string]error{}, nodes: map[string]bool{}}
	return []Phase{
		resetConnect{st},
		GatherFacts{},
		ClusterIdentity{Policy: PKIIfPresent},
		resetCheck{st},
		cordon{st},
		resetNodes{st: st, role: v1alpha1.RoleWorker, o: o},
		resetNodes{st: st, role: v1alpha1.RoleControlPlane, o: o},
		forgetCluster{st},
		reportUnreachable{st},
	}
}

// resetState is what the reset phases share; Reset makes one per run.
type resetState struct {
	mu sync.Mutex
	// unreachable hosts (whole-cluster reset only: they are reported and the others reset).
	unreachable map[string]error
	// api reaches the cluster through survivor; nil when no control plane outlives the reset (the
	// whole cluster) or none answers.
	api      *clusterAPI
	survivor *Host
	// nodes are the registered Node objects among the hosts of the spec.
	nodes map[string]bool
	// whole: no node outlives the reset (no --host, or every other host of the spec is not a node).
	whole bool
}

// wholeCluster reports whether every host of the spec is being reset.
func (r *Run) wholeCluster() bool {
	for _, h := range r.Cluster.Spec.Hosts {
		if !r.targets[h.Name] {
			return false
		}
	}
	return true
}

// resetConnect opens every connection. For the whole cluster an unreachable host is reported and
// left out (it is reported again at the end, exit code 4); for named hosts nothing is changed
// unless every named host answers. An unreachable read-only control plane only loses its use.
type resetConnect struct{ st *resetState }

func (resetConnect) Name() string { return "connect" }

func (p resetConnect) Run(ctx context.Context, r *Run) error {
	if r.Connect == nil {
		return errors.New("no connector configured")
	}
	st := p.st
	whole := r.wholeCluster()
	return connectHosts(ctx, r, func(h *Host, err error) bool {
		if r.IsTarget(h) && !whole {
			return false
		}
		st.mu.Lock()
		st.unreachable[h.Name()] = err
		st.mu.Unlock()
		if r.IsTarget(h) {
			r.Log.Error("host unreachable: it is not reset; the others are", "host", h.Name(), "error", err)
		} else {
			r.Log.Warn("control plane unreachable: not used to reach the cluster", "host", h.Name(), "error", err)
		}
		return true
	})
}

// connected returns the hosts with a connection, in spec order.
func connected(hosts []*Host) []*Host {
	var out []*Host
	for _, h := range hosts {
		if h.Connected() {
			out = append(out, h)
		}
	}
	return out
}

// resetCheck finds the control plane that outlives the reset and connects to the cluster API
// through it, and refuses (exit code 2, nothing changed) to reset the last control planes of a
// cluster that keeps worker nodes.
type resetCheck struct{ st *resetState }

func (resetCheck) Name() string { return "check" }

func (p resetCheck) Run(ctx context.Context, r *Run) error {
	st := p.st
	st.whole = r.wholeCluster()
	if !st.whole {
		if err := st.findSurvivor(ctx, r); err != nil {
			return err
		}
	}
	if !st.whole && len(r.TargetsWithRole(v1alpha1.RoleControlPlane)) > 0 {
		if err := st.findEtcdSurvivor(ctx, r); err != nil {
			return err
		}
	}
	if st.whole {
		// Nothing outlives the reset: nodes are neither drained nor deleted (their Node objects go
		// with etcd). The first control plane goes last, so it answers for etcd while the others
		// leave.
		st.api, st.survivor = nil, nil
		if cp, err := r.firstControlPlane(); err == nil && cp.Connected() {
			st.survivor = cp
		}
	}
	return nil
}

// findSurvivor connects to the cluster API through a control plane that is not reset. When every
// control plane is, it refuses while other hosts are still nodes, and otherwise turns the reset into
// a whole-cluster one.
func (st *resetState) findSurvivor(ctx context.Context, r *Run) error {
	var survivors, targetCPs []*Host
	for _, h := range connected(r.All()) {
		if h.Spec.Role != v1alpha1.RoleControlPlane || !h.Facts.AdminConfPresent {
			continue
		}
		if r.IsTarget(h) {
			targetCPs = append(targetCPs, h)
		} else {
			survivors = append(survivors, h)
		}
	}
	keepsCP := false
	for _, h := range r.Cluster.Spec.ControlPlanes() {
		if !r.targets[h.Name] {
			keepsCP = true
		}
	}
	via := survivors
	if !keepsCP {
		via = targetCPs // only to see which other hosts are still nodes
	}
	var apiErr error
	for _, h := range via {
		c, err := apiThrough(ctx, h)
		if err == nil {
			if err = st.listNodes(ctx, c, r); err == nil {
				st.api, st.survivor = connectedAPI(c), h
				break
			}
		}
		apiErr = errors.Join(apiErr, hostErr(h.Name(), err))
		r.Log.Warn("the cluster API does not answer through this control plane", "host", h.Name(), "error", err)
	}
	if keepsCP {
		if st.api == nil && len(survivors) > 0 {
			st.survivor = survivors[0] // etcd's member list does not need the API
		}
		if st.api == nil {
			r.Log.Warn("no other control plane reaches the cluster API: the nodes are reset without a drain, and their Node objects and etcd members stay", "tried", fmt.Sprint(apiErr))
		}
		return nil
	}
	var workers []string
	for _, h := range r.Cluster.Spec.Hosts {
		// Without an answer from the cluster, every other host of the spec counts as a node.
		if !r.targets[h.Name] && (st.api == nil || st.nodes[h.Name]) {
			workers = append(workers, h.Name)
		}
	}
	if len(workers) > 0 {
		why := "still nodes of the cluster"
		if st.api == nil {
			why = "in the spec; the cluster API did not answer to tell whether they are still nodes"
		}
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("refusing to reset the last control plane(s): %s would be left without one (%s); reset them first, or reset the whole cluster (no --host); nothing was changed",
			strings.Join(workers, ", "), why))
	}
	st.whole = true // the other hosts of the spec are not nodes
	return nil
}

// findEtcdSurvivor makes sure a control plane that stays can remove the reset control planes' etcd
// members: its etcd must answer with the member list before anything is changed. Without one, a
// reset control plane would stay an etcd member that never answers again, and the next lost
// member could cost etcd its quorum.
func (st *resetState) findEtcdSurvivor(ctx context.Context, r *Run) error {
	candidates := []*Host{}
	if st.survivor != nil {
		candidates = append(candidates, st.survivor)
	}
	for _, h := range connected(r.All()) {
		if h.Spec.Role == v1alpha1.RoleControlPlane && !r.IsTarget(h) && h.Facts.AdminConfPresent && h != st.survivor {
			candidates = append(candidates, h)
		}
	}
	var tried []string
	for _, h := range candidates {
		if h.etcdMemberNames(ctx) != nil {
			st.survivor = h
			return nil
		}
		tried = append(tried, h.Name())
	}
	var targets []string
	for _, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		targets = append(targets, h.Name())
	}
	why := "no other control plane is reachable"
	if len(tried) > 0 {
		why = "etcd does not answer on " + strings.Join(tried, ", ")
	}
	return &guard.Refusal{Reason: fmt.Sprintf("cannot reset control plane %s: %s, so its etcd member could not be removed and etcd would keep a member that never answers again", strings.Join(targets, ", "), why),
		Fix: "Bring etcd back on a control plane that stays, or reset the whole cluster (no --host)"}
}

// listNodes records which targets are registered nodes, and which other hosts are.
func (st *resetState) listNodes(ctx context.Context, c *kubeapi.Client, r *Run) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return err
	}
	for name := range nodes {
		if _, ok := r.Cluster.Spec.Host(name); ok {
			st.nodes[name] = true
		}
	}
	return nil
}

// cordon marks every target node unschedulable before any drain, so pods evicted from one target
// never land on another.
type cordon struct{ st *resetState }

func (cordon) Name() string { return "cordon" }

func (p cordon) ShouldRun(r *Run) (bool, string) {
	if p.st.whole {
		return false, "the whole cluster is reset: no node outlives it to take pods"
	}
	if p.st.api == nil {
		return false, "the cluster API cannot be reached"
	}
	return true, ""
}

func (p cordon) Run(ctx context.Context, r *Run) error {
	st := p.st
	for _, h := range connected(r.Targets()) {
		if !st.nodes[h.Name()] {
			continue
		}
		c, err := st.api.get(ctx)
		if err != nil {
			return err
		}
		n, err := c.Node(ctx, h.Name())
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if n.Spec.Unschedulable {
			continue
		}
		if err := r.fx.Cordon(ctx, st.api, h.Name(), "reset"); err != nil {
			return err
		}
	}
	return nil
}

// resetNodes resets the targets of one role: drain (when the cluster outlives them), kubeadm reset
// and the cleanup of what it leaves, the etcd member check for a control plane, and the Node's
// deletion. Workers are reset in parallel, control planes one at a time, the first one last.
type resetNodes struct {
	st   *resetState
	role v1alpha1.Role
	o    ResetOptions
}

func (p resetNodes) Name() string { return roleStep("reset", p.role) }

func (p resetNodes) hosts(r *Run) []*Host {
	hosts := connected(r.TargetsWithRole(p.role))
	first, _ := r.firstControlPlane()
	sort.SliceStable(hosts, func(i, j int) bool { return hosts[j] == first && hosts[i] != first })
	return hosts
}

func (p resetNodes) ShouldRun(r *Run) (bool, string) {
	if len(p.hosts(r)) == 0 {
		return false, "no " + string(p.role) + " to reset"
	}
	return true, ""
}

func (p resetNodes) Run(ctx context.Context, r *Run) error {
	limit := r.Concurrency
	if p.role == v1alpha1.RoleControlPlane {
		limit = 1 // each one leaves etcd; the rest must keep quorum
	}
	return ForEachHost(ctx, p.hosts(r), limit, func(ctx context.Context, h *Host) error {
		return p.resetOne(ctx, r, h)
	})
}

func (p resetNodes) resetOne(ctx context.Context, r *Run, h *Host) error {
	st := p.st
	node := st.api != nil && st.nodes[h.Name()]
	if node {
		// Evictions honour PodDisruptionBudgets until the timeout.
		err := r.fx.Drain(ctx, st.api, h.Name(), kubeapi.DrainOptions{Timeout: p.o.DrainTimeout, Force: p.o.Force,
			Report: func(msg string) { r.Log.Warn(msg, "host", h.Name()) }})
		if err != nil {
			return err
		}
	}
	if h.Spec.Role == v1alpha1.RoleControlPlane && p.o.beforeControlPlane != nil {
		survivor := st.survivor
		if survivor == h {
			survivor = nil
		}
		if err := p.o.beforeControlPlane(ctx, r, h, survivor); err != nil {
			return err
		}
	}
	if err := h.resetHost(ctx, &r.Cluster.Spec, r.Log); err != nil {
		return err
	}
	if h.Spec.Role == v1alpha1.RoleControlPlane && st.survivor != h {
		if st.survivor == nil {
			r.Log.Warn("no other control plane to check etcd's member list from", "host", h.Name())
		} else if err := removeEtcdMember(ctx, r.Log, st.survivor, h); err != nil {
			return err
		}
	}
	if node {
		// After the host's reset: a running kubelet would register the Node again.
		return r.fx.DeleteNode(ctx, st.api, h.Name())
	}
	return nil
}

// forgetCluster removes the admin kubeconfig from the state directory once the whole cluster is
// gone: it names a cluster that no longer exists. The PKI stays, so a cluster created again has the
// same CA (docs/reset.md).
type forgetCluster struct{ st *resetState }

func (forgetCluster) Name() string { return "state" }

func (p forgetCluster) ShouldRun(r *Run) (bool, string) {
	if !p.st.whole {
		return false, "the cluster stays"
	}
	if cp, err := r.firstControlPlane(); err != nil || !cp.Connected() {
		return false, "the first control plane was not reset"
	}
	return true, ""
}

func (p forgetCluster) Run(ctx context.Context, r *Run) error {
	if err := r.fx.RemoveLocal(r.StateDir.AdminConf()); err != nil {
		return fmt.Errorf("remove the admin kubeconfig: %w", err)
	}
	return nil
}

// reportUnreachable fails the run (exit code 4) when hosts could not be reset because they could not
// be reached; the others were reset.
type reportUnreachable struct{ st *resetState }

func (reportUnreachable) Name() string { return "unreachable" }

func (reportUnreachable) ShouldRun(r *Run) (bool, string) {
	for _, h := range r.Targets() {
		if !h.Connected() {
			return true, ""
		}
	}
	return false, "every host was reached"
}

func (p reportUnreachable) Run(ctx context.Context, r *Run) error {
	st := p.st
	var errs []error
	for _, h := range r.Targets() {
		if !h.Connected() {
			errs = append(errs, fmt.Errorf("host %s was not reset: %w", h.Name(), st.unreachable[h.Name()]))
		}
	}
	return exitcode.New(exitcode.Unreachable, errors.Join(errs...))
}
