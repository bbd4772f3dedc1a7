package phases

import (
	"context"
	"errors"
	"fmt"

	"installer.dev/installer/pkg/guard"
)

// PKIPolicy says what a workflow needs of the state directory's PKI.
type PKIPolicy int

const (
	// PKIMayCreate (create cluster): a PKI generated for this run is saved once no host turns out
	// to hold a cluster.
	PKIMayCreate PKIPolicy = iota + 1
	// PKIRequired (join node, upgrade): the command changes a cluster it must prove is this one.
	PKIRequired
	// PKIIfPresent (reset, kubeconfig): compared when the state directory has one; nothing is saved.
	PKIIfPresent
)

// LocalState holds what the run generated and the state directory lacks (a new cluster's PKI,
// secrets). ClusterIdentity saves it through the run's effects.
type LocalState interface {
	// Pending lists the paths Save would write.
	Pending() []string
	// Save writes them; it never replaces anything in the state directory.
	Save() error
}

// ClusterIdentity runs before any change: every host's cluster PKI must be the state directory's
// (guard.ClusterPKI). Only then is what the run generated saved; a PKI generated for a new cluster
// is saved only when no host holds a cluster.
type ClusterIdentity struct {
	Policy PKIPolicy
}

func (ClusterIdentity) Name() string { return "identity" }

func (p ClusterIdentity) Run(ctx context.Context, r *Run) error {
	var hosts []guard.HostFiles
	for _, h := range connected(r.All()) {
		hosts = append(hosts, guard.HostFiles{Name: h.Name(), Files: h.Facts.Cluster})
	}
	local := r.PKI
	if r.PKIGenerated {
		if p.Policy != PKIMayCreate {
			return errors.New("a PKI was generated for a command that does not create a cluster")
		}
		local = nil // generated for this run: no host may hold a cluster yet
	}
	if p.Policy == PKIIfPresent {
		// reset and kubeconfig compare when they can and save nothing: they do not create.
		if local == nil {
			r.Log.Info("the state directory has no PKI: the hosts' cluster CA is not compared", "state-dir", r.StateDir)
			return nil
		}
		return guard.ClusterPKI(r.StateDir.String(), local, hosts)
	}
	if local == nil && p.Policy == PKIRequired {
		return &guard.Refusal{Reason: fmt.Sprintf("the state directory %s has no PKI, so the cluster cannot be proven to be the one this command should change", r.StateDir),
			Fix: guard.RecoverFix}
	}
	if err := guard.ClusterPKI(r.StateDir.String(), local, hosts); err != nil {
		return err
	}
	if err := r.fx.SaveLocal(r.Local); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}
