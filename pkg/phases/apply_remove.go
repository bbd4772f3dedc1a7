package phases

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// removal is what apply found for the hosts the spec marks remove: those still part of the
// cluster (a Node, or an etcd member), and the run that removes them. That run works on the spec
// as written, since only it has their SSH details; apply's own run works on the spec without them,
// so every file it renders is the cluster's as it must become.
type removal struct {
	// hosts are reachable and removed with the reset workflow; gone ones cannot be reached and
	// are removed from the surviving side only.
	hosts, controlPlanes []string
	gone                 []goneHost
	run                  *Run
}

// goneHost is a host marked remove that cannot be reached: its etcd member (when it has one) and
// its Node (when it is one) go, the host is not touched.
type goneHost struct {
	name   string
	member *etcdMember
	node   bool
}

// goneAfter is how long the kubelet of a host that cannot be reached must have been silent (its
// Lease not renewed) before apply counts the host as gone for good.
const goneAfter = 2 * time.Minute

// removals finds which hosts marked remove are still part of the cluster, connects to them, and
// checks that they hold this cluster's CA (a host of another cluster stops the run, exit 6). A host
// that cannot be reached is gone for good only once its kubelet has been silent for goneAfter;
// otherwise apply refuses. A control plane leaves only while every other etcd member is healthy:
// one member less must not cost etcd its quorum. A host marked remove that is not part of the
// cluster is only logged.
func (o ApplyObserve) removals(ctx context.Context, r *Run, c *kubeapi.Client, nodes map[string]corev1.Node) error {
	if o.Spec == nil || len(o.Spec.Spec.Removing()) == 0 {
		return nil
	}
	d := o.Diff
	first, err := d.firstControlPlane(r)
	if err != nil {
		return err
	}
	res, err := first.Query(ctx, ssh.Cmd{Args: scripts.Etcd.Args("member-list")})
	if err != nil {
		return hostErr(first.Name(), fmt.Errorf("list etcd's members: %w", err))
	}
	members, err := parseEtcdMembers(string(res.Stdout))
	if err != nil {
		return hostErr(first.Name(), fmt.Errorf("etcd's members: %w", err))
	}
	rm := &removal{}
	var inCluster []string
	for _, h := range o.Spec.Spec.Removing() {
		if _, node := nodes[h.Name]; node {
			inCluster = append(inCluster, h.Name)
		} else if _, member := memberOf(members, h.Name, h.NodeIP()); member {
			inCluster = append(inCluster, h.Name)
		} else {
			r.Log.Info("host marked remove is not part of the cluster: delete its entry from the spec", "host", h.Name)
		}
	}
	if len(inCluster) == 0 {
		return nil
	}
	var staying []string
	for _, cp := range r.Cluster.Spec.ControlPlanes() {
		if h := r.Hosts[cp.Name]; h != nil && h.Connected() && !slices.Contains(d.join, cp.Name) {
			staying = append(staying, cp.Name)
		}
	}
	sub, err := subRun(r, o.Spec, inCluster, staying)
	if err != nil {
		return err
	}
	var unreachable []string
	if _, err := Execute(ctx, sub, []Phase{ConnectReachable{Unreachable: &unreachable}, GatherFacts{}, ClusterIdentity{Policy: PKIRequired}}); err != nil {
		return fmt.Errorf("the hosts to remove (%s): %w", strings.Join(inCluster, ", "), err)
	}
	rm.run = sub
	var goneMembers []etcdMember
	for _, name := range inCluster {
		h, _ := o.Spec.Spec.Host(name)
		m, member := memberOf(members, h.Name, h.NodeIP())
		_, node := nodes[name]
		if !slices.Contains(unreachable, name) {
			rm.hosts = append(rm.hosts, name)
			cost := "cordoned, drained (PodDisruptionBudgets honoured), `kubeadm reset` and the installer's cleanup on the host, its Node deleted"
			if h.Role == v1alpha1.RoleControlPlane || member {
				rm.controlPlanes = append(rm.controlPlanes, name)
				cost = "taken out of the API's load balancer (the VIP moved away first), drained, `kubeadm reset` (its etcd member removed, checked from a control plane that stays), the installer's cleanup, its Node deleted; once every etcd member is healthy"
			}
			d.add(drift.Change{Host: name, Component: "node", Lines: []string{"- removed from the cluster"}, Cost: cost})
			continue
		}
		silent, err := kubeletSilentFor(ctx, c, name, node)
		if err != nil {
			return err
		}
		if silent < goneAfter {
			d.refuse("spec.hosts", fmt.Sprintf("host %s is marked remove and cannot be reached, but its kubelet renewed its lease %s ago: it is not gone for good. Bring it back so apply can drain and reset it, or, if it is gone, run apply again once its kubelet has been silent for %s",
				name, silent.Round(time.Second), goneAfter))
			continue
		}
		g := goneHost{name: name, node: node}
		line := "- removed from the cluster (it cannot be reached"
		if node {
			line += fmt.Sprintf("; its kubelet silent for %s", silent.Round(time.Second))
		}
		line += ")"
		if member {
			g.member = &m
			goneMembers = append(goneMembers, m)
			rm.controlPlanes = append(rm.controlPlanes, name)
		}
		rm.gone = append(rm.gone, g)
		d.add(drift.Change{Host: name, Component: "node", Lines: []string{line},
			Cost: "removed from the surviving side first, before any other change: its etcd member removed on a control plane that stays, its Node deleted; the host itself is not touched (reset it before it is used again)"})
	}
	d.mu.Lock()
	d.removal = rm
	d.mu.Unlock()
	if len(rm.controlPlanes) == 0 {
		return nil
	}
	bad, err := first.etcdUnhealthy(ctx)
	if err != nil {
		return err
	}
	for ep, why := range bad {
		if !slices.ContainsFunc(goneMembers, func(m etcdMember) bool { return slices.Contains(m.ClientURLs, ep) }) {
			d.refuse("spec.hosts", fmt.Sprintf("control plane %s is marked remove, but etcd member %s is not healthy (%s): one member less could cost etcd its quorum; bring it back first",
				strings.Join(rm.controlPlanes, ", "), ep, why))
		}
	}
	// A member that still answers is no proof of a host gone for good (only SSH may be cut off).
	for _, g := range rm.gone {
		if g.member != nil && !slices.ContainsFunc(g.member.ClientURLs, func(u string) bool { _, down := bad[u]; return down }) {
			d.refuse("spec.hosts", fmt.Sprintf("host %s is marked remove and cannot be reached over SSH, but its etcd member answers healthy: it is not gone for good. Bring SSH back so apply can reset it", g.name))
		}
	}
	return nil
}

// kubeletSilentFor is how long node's kubelet has not renewed its Lease; a host that is no node
// (or has no Lease) has been silent forever.
func kubeletSilentFor(ctx context.Context, c *kubeapi.Client, node string, isNode bool) (time.Duration, error) {
	if !isNode {
		return time.Duration(math.MaxInt64), nil
	}
	renewed, err := c.LeaseRenewed(ctx, node)
	if err != nil {
		return 0, err
	}
	if renewed.IsZero() {
		return time.Duration(math.MaxInt64), nil
	}
	return time.Since(renewed), nil
}

// firstControlPlane is the first control plane of the spec that this run reached and that is a
// node already: apply reads and stores the cluster's configuration through it.
func (d *ApplyDiff) firstControlPlane(r *Run) (*Host, error) {
	for _, cp := range r.Cluster.Spec.ControlPlanes() {
		if h := r.Hosts[cp.Name]; h != nil && h.Connected() && !slices.Contains(d.join, cp.Name) {
			return h, nil
		}
	}
	return nil, errors.New("no control plane of the spec that is a node could be reached")
}

// apiLB is the API's load balancer over the control planes that are nodes already: one this apply
// joins has no haproxy before its join.
func (d *ApplyDiff) apiLB(r *Run, timeout time.Duration) *apiLB {
	lb := newAPILB(r, "apply", timeout)
	if lb == nil {
		return nil
	}
	lb.cps = slices.DeleteFunc(lb.cps, func(h *Host) bool { return slices.Contains(d.join, h.Name()) })
	if len(lb.cps) < 2 {
		return nil
	}
	return lb
}

// ApplyRemoveGone removes the hosts marked remove that are gone for good from the surviving side,
// before any other change: with a member that never answers, etcd tolerates one loss less, and
// every control plane that leaves the load balancer waits for all members healthy to come back.
// Each gone member is removed only while every other member is healthy.
type ApplyRemoveGone struct {
	Diff    *ApplyDiff
	Options ApplyOptions
}

func (ApplyRemoveGone) Name() string { return "apply/remove-gone" }

func (a ApplyRemoveGone) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && (a.Diff.removal == nil || len(a.Diff.removal.gone) == 0) {
		return false, "no host marked remove is gone"
	}
	return true, ""
}

func (a ApplyRemoveGone) Run(ctx context.Context, r *Run) error {
	d := a.Diff
	if !d.observed {
		return errNotObserved
	}
	survivor, err := d.firstControlPlane(r)
	if err != nil {
		return err
	}
	for _, g := range d.removal.gone {
		if g.member != nil {
			bad, err := survivor.etcdUnhealthy(ctx)
			if err != nil {
				return err
			}
			down := false
			for ep, why := range bad {
				if !slices.Contains(g.member.ClientURLs, ep) {
					return hostErr(g.name, fmt.Errorf("its etcd member is not removed: member %s is not healthy either (%s), and etcd could lose its quorum", ep, why))
				}
				down = true
			}
			if !down {
				return hostErr(g.name, errors.New("its etcd member is not removed: it answers healthy again, so the host is not gone; run apply again"))
			}
			if _, err := survivor.ExecDescribed(ctx, ssh.Cmd{Args: scripts.Etcd.Args("member-remove", g.member.ID)},
				[]string{fmt.Sprintf("remove etcd member %s (%s, gone) on %s", g.member.ID, g.name, survivor.Name())}); err != nil {
				return hostErr(g.name, fmt.Errorf("remove its etcd member on %s: %w", survivor.Name(), err))
			}
		}
		if g.node {
			if err := r.fx.DeleteNode(ctx, r.api, g.name); err != nil {
				return hostErr(g.name, err)
			}
		}
	}
	return nil
}

// ApplyRemove removes the hosts marked remove with the `reset --host` workflow (its checks
// included): cordon, then workers in parallel, then control planes one at a time, each drained,
// reset, its etcd member checked from a control plane that stays, its Node deleted. Before each
// control plane, every etcd member must be healthy again and the control plane leaves the API's
// load balancer, the VIP moving away first.
type ApplyRemove struct {
	Diff    *ApplyDiff
	Options ApplyOptions
}

func (ApplyRemove) Name() string { return "apply/remove" }

func (a ApplyRemove) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && (a.Diff.removal == nil || len(a.Diff.removal.hosts) == 0) {
		return false, "no host to remove"
	}
	return true, ""
}

func (a ApplyRemove) Run(ctx context.Context, r *Run) error {
	d, o := a.Diff, a.Options.withDefaults()
	if !d.observed {
		return errNotObserved
	}
	sub := d.removal.run
	for _, g := range d.removal.gone {
		sub.drop(g.name) // removed from the surviving side already
	}
	ro := ResetOptions{DrainTimeout: o.Timeout, beforeControlPlane: func(ctx context.Context, sub *Run, h *Host, survivor *Host) error {
		if survivor != nil {
			if _, err := survivor.etcdMembersHealthyN(ctx, o.Timeout, 0); err != nil {
				return hostErr(h.Name(), fmt.Errorf("not removed: etcd is not healthy, and one member less could cost its quorum: %w", err))
			}
		}
		// Every haproxy: those of the control planes that stay (one joined by this apply too: its
		// keepalived may take the VIP) and h's own.
		cps := []*Host{h}
		for _, cp := range r.Cluster.Spec.ControlPlanes() {
			if own := r.Hosts[cp.Name]; own != nil && own.Connected() && !(r.fx.DryRun() && slices.Contains(d.join, cp.Name)) {
				cps = append(cps, own)
			}
		}
		lb := apiLBOver(sub, "apply", cps, o.Timeout)
		if lb == nil {
			return nil
		}
		return lb.takeOut(ctx, h, "its removal", true)
	}}
	_, err := Execute(ctx, sub, Reset(ro))
	mergeSubRun(r, sub)
	if err != nil {
		return fmt.Errorf("remove %s: %w", strings.Join(d.removal.hosts, ", "), err)
	}
	return nil
}

// subRun prepares a run of another workflow inside apply's, on cluster c (apply's own, or the spec
// as written), changing targets and reading from readOnly, with apply's inputs, connections (the
// SSH pool hands out the same one per host), logs and dry-run setting.
func subRun(r *Run, c *v1alpha1.Cluster, targets, readOnly []string) (*Run, error) {
	sub, err := NewRun(c, targets, readOnly...)
	if err != nil {
		return nil, err
	}
	sub.Input, sub.Concurrency, sub.Log, sub.Progress, sub.Connect = r.Input, r.Concurrency, r.Log, r.Progress, r.Connect
	sub.Input.Cluster = c
	sub.DryRun = r.fx.DryRun()
	for name, h := range sub.Hosts {
		if own := r.Hosts[name]; own != nil {
			own.mu.Lock()
			h.log = own.log
			own.mu.Unlock()
		}
	}
	return sub, nil
}

// drop takes a host out of the run altogether.
func (r *Run) drop(name string) {
	delete(r.Hosts, name)
	delete(r.targets, name)
	r.order = slices.DeleteFunc(r.order, func(n string) bool { return n == name })
}

// mergeSubRun makes what a sub-run changed (or would change) apply's own: counted, and in the plan.
func mergeSubRun(r, sub *Run) {
	sub.j.mu.Lock()
	planned, performed, changes := sub.j.planned, sub.j.performed, 0
	for _, n := range sub.j.changes {
		changes += n
	}
	sub.j.mu.Unlock()
	r.j.change(changes)
	for _, p := range planned {
		r.j.plan(p, false)
	}
	for _, p := range performed {
		r.j.did(p)
	}
}
