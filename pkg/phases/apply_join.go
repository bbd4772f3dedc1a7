package phases

import (
	"context"
	"fmt"
	"strings"
)

// ApplyJoin joins the spec's workers that are not nodes yet with the `join node` workflow (its own
// checks included: the cluster answers, hosts that are nodes already are left alone), in a run of
// its own that changes only them and reads from the first control plane. It runs after every other
// change, so the new workers join with the configuration apply just stored.
type ApplyJoin struct {
	Diff *ApplyDiff
}

func (ApplyJoin) Name() string { return "apply/join" }

func (a ApplyJoin) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && len(a.Diff.join) == 0 {
		return false, "every host of the spec is a node"
	}
	return true, ""
}

func (a ApplyJoin) Run(ctx context.Context, r *Run) error {
	d := a.Diff
	if !d.observed {
		return errNotObserved
	}
	first, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	sub, err := NewRun(r.Cluster, d.join, first.Name())
	if err != nil {
		return err
	}
	sub.Input, sub.Concurrency, sub.Log, sub.Progress, sub.Connect = r.Input, r.Concurrency, r.Log, r.Progress, r.Connect
	sub.DryRun = r.fx.DryRun()
	for name, h := range sub.Hosts {
		if own := r.Hosts[name]; own != nil {
			own.mu.Lock()
			h.log = own.log
			own.mu.Unlock()
		}
	}
	_, err = Execute(ctx, sub, JoinNode())
	// What the join changed (or would change) is this phase's: counted, and in the plan.
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
	if err != nil {
		return fmt.Errorf("join %s: %w", strings.Join(d.join, ", "), err)
	}
	return nil
}
