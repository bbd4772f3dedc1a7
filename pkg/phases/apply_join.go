package phases

import (
	"context"
	"fmt"
	"strings"
)

// ApplyJoin joins the spec's hosts that are not nodes yet (workers, and control planes, whose
// etcd members join kubeadm's way) with the `join node` workflow (its own
// checks included: the cluster answers, hosts that are nodes already are left alone), in a run of
// its own that changes only them and reads from the first control plane. It runs after the changes
// to the nodes, so the new hosts join with the configuration apply just stored, and before any
// host is removed.
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
	first, err := d.firstControlPlane(r)
	if err != nil {
		return err
	}
	sub, err := subRun(r, r.Cluster, d.join, []string{first.Name()})
	if err != nil {
		return err
	}
	_, err = Execute(ctx, sub, JoinNode())
	// What the join changed (or would change) is this phase's: counted, and in the plan.
	mergeSubRun(r, sub)
	if err != nil {
		return fmt.Errorf("join %s: %w", strings.Join(d.join, ", "), err)
	}
	return nil
}
