package phases

import (
	"context"
	"fmt"
	"time"
)

// RequireCluster stops `join node` early when the first control plane has not initialised a cluster.
type RequireCluster struct{}

func (RequireCluster) Name() string { return "cluster-check" }

func (RequireCluster) Run(ctx context.Context, r *Run) error {
	cp, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	if r.IsTarget(cp) {
		return fmt.Errorf("host %s initialises the cluster; use create cluster for it", cp.Name())
	}
	if !cp.Facts.AdminConfPresent {
		return fmt.Errorf("no cluster on %s yet: run create cluster first", cp.Name())
	}
	if ok, why := cp.initComplete(ctx, time.Minute); !ok {
		return fmt.Errorf("the cluster on %s does not answer (%s); nothing was changed", cp.Name(), why)
	}
	return nil
}

// SettleNodes leaves alone the hosts `join node` was asked for that are nodes of this cluster
// already (ClusterIdentity proved which cluster): a node is changed by upgrade or reset, never by a
// second join. A re-run after a join that got as far as kubeadm join only waits for the node.
type SettleNodes struct{}

func (SettleNodes) Name() string { return "existing-nodes" }

func (SettleNodes) ShouldRun(r *Run) (bool, string) {
	for _, h := range r.Targets() {
		if h.Facts.KubeletConfPresent && !unfinishedJoin(h) {
			return true, ""
		}
	}
	return false, "no host is a node yet"
}

func (SettleNodes) Run(_ context.Context, r *Run) error {
	for _, h := range r.Targets() {
		if h.Facts.KubeletConfPresent && !unfinishedJoin(h) {
			r.Settle(h, "is a node of this cluster already; left untouched")
		}
	}
	return nil
}
