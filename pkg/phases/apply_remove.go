package phases

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// removal is what apply found for the hosts the spec marks remove: those still part of the
// cluster (a Node, or an etcd member), and the run that removes them. That run works on the spec
// as written, since only it has their SSH details; apply's own run works on the spec without them,
// so every file it renders is the cluster's as it must become.
type removal struct {
	hosts, controlPlanes []string
	run                  *Run
}

// removals finds which hosts marked remove are still part of the cluster, connects to them, and
// checks that they hold this cluster's CA (a host of another cluster stops the run, exit 6). A
// control plane leaves only while every etcd member is healthy: one member less must not cost etcd
// its quorum. A host marked remove that is not part of the cluster is only logged.
func (o ApplyObserve) removals(ctx context.Context, r *Run, nodes map[string]corev1.Node) error {
	if o.Spec == nil || len(o.Spec.Spec.Removing()) == 0 {
		return nil
	}
	d := o.Diff
	first, err := r.firstControlPlane()
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
	for _, h := range o.Spec.Spec.Removing() {
		_, node := nodes[h.Name]
		_, member := memberOf(members, h.Name, h.NodeIP())
		if !node && !member {
			r.Log.Info("host marked remove is not part of the cluster: delete its entry from the spec", "host", h.Name)
			continue
		}
		rm.hosts = append(rm.hosts, h.Name)
		if h.Role == v1alpha1.RoleControlPlane || member {
			rm.controlPlanes = append(rm.controlPlanes, h.Name)
		}
	}
	if len(rm.hosts) == 0 {
		return nil
	}
	var staying []string
	for _, cp := range r.Cluster.Spec.ControlPlanes() {
		if h := r.Hosts[cp.Name]; h != nil && h.Connected() && !slices.Contains(d.join, cp.Name) {
			staying = append(staying, cp.Name)
		}
	}
	sub, err := subRun(r, o.Spec, rm.hosts, staying)
	if err != nil {
		return err
	}
	if _, err := Execute(ctx, sub, []Phase{Connect{}, GatherFacts{}, ClusterIdentity{Policy: PKIRequired}}); err != nil {
		return fmt.Errorf("the hosts to remove (%s): %w", strings.Join(rm.hosts, ", "), err)
	}
	rm.run = sub
	d.mu.Lock()
	d.removal = rm
	d.mu.Unlock()
	for _, name := range rm.hosts {
		cost := "cordoned, drained (PodDisruptionBudgets honoured), `kubeadm reset` and the installer's cleanup on the host, its Node deleted"
		if slices.Contains(rm.controlPlanes, name) {
			cost = "taken out of the API's load balancer (the VIP moved away first), drained, `kubeadm reset` (its etcd member removed, checked from a control plane that stays), the installer's cleanup, its Node deleted; once every etcd member is healthy"
		}
		d.add(drift.Change{Host: name, Component: "node", Lines: []string{"- removed from the cluster"}, Cost: cost})
	}
	if len(rm.controlPlanes) > 0 {
		if _, err := first.etcdMembersHealthyN(ctx, etcdHealthWait, 0); err != nil {
			d.refuse("spec.hosts", fmt.Sprintf("control plane %s is marked remove, but etcd is not healthy (%v): one member less could cost etcd its quorum; bring every member back first",
				strings.Join(rm.controlPlanes, ", "), err))
		}
	}
	return nil
}

// etcdHealthWait is how long apply waits for every etcd member to answer healthy before it counts
// etcd as unhealthy.
const etcdHealthWait = 30 * time.Second

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
	if a.Diff.observed && a.Diff.removal == nil {
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
	ro := ResetOptions{DrainTimeout: o.Timeout, beforeControlPlane: func(ctx context.Context, sub *Run, h *Host, survivor *Host) error {
		if survivor != nil {
			if _, err := survivor.etcdMembersHealthyN(ctx, o.Timeout, 0); err != nil {
				return hostErr(h.Name(), fmt.Errorf("not removed: etcd is not healthy, and one member less could cost its quorum: %w", err))
			}
		}
		lb := newAPILB(sub, "apply", o.Timeout)
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
