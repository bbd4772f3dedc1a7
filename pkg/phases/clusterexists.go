package phases

import (
	"context"
	"fmt"
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
	if !cp.Facts.AdminConfPresent || !cp.initComplete(ctx) {
		return fmt.Errorf("no cluster on %s yet: run create cluster first", cp.Name())
	}
	return nil
}
