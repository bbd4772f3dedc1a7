package phases

import (
	"context"
	"fmt"
	"strings"

	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
)

// clusterFilesComponent names the cluster files' change in the diff.
const clusterFilesComponent = "cluster files"

// clusterFilesToApply are the rendered cluster files (cni.yaml, ccm.yaml, addons/*.yaml) that
// create's ApplyClusterFiles phases apply, in their order, without those a phase skips (no
// ccm.yaml without a cloud provider, say): apply compares and applies the same files.
func clusterFilesToApply(r *Run) ([]manifests.File, error) {
	files, err := manifests.ClusterFiles(&r.Cluster.Spec, r.Inputs)
	if err != nil {
		return nil, err
	}
	var out []manifests.File
	for _, p := range CreateCluster() {
		a, ok := p.(ApplyClusterFiles)
		if !ok {
			continue
		}
		if run, _ := a.ShouldRun(r); !run {
			continue
		}
		for _, f := range files {
			if a.Match(f.Path) {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// addons compares the objects of the cluster files with the cluster's through a server-side dry-run
// apply (nothing is stored) and records the files with an object to create or change. The diff
// names the objects, never their content: ccm.yaml may hold credentials.
func (o ApplyObserve) addons(ctx context.Context, r *Run, c *kubeapi.Client) error {
	files, err := clusterFilesToApply(r)
	if err != nil {
		return err
	}
	var lines []string
	for _, f := range files {
		differs, err := c.Differences(ctx, f.Content)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if len(differs) == 0 {
			continue
		}
		for _, l := range differs {
			op, obj, _ := strings.Cut(l, " ")
			lines = append(lines, op+" "+f.Path+": "+obj)
		}
		o.Diff.mu.Lock()
		o.Diff.addons = append(o.Diff.addons, f)
		o.Diff.mu.Unlock()
	}
	if len(lines) > 0 {
		o.Diff.add(drift.Change{Component: clusterFilesComponent, Lines: lines,
			Cost: "applied server-side (the objects' controllers roll out the change)"})
	}
	return nil
}

// ApplyAddons applies, server-side, the cluster files (the CNI, the CCM, add-ons) in which the
// observation found an object to create or change, in create's order; the objects' controllers
// (a DaemonSet's, a Deployment's) roll the change out to their pods.
type ApplyAddons struct {
	Diff *ApplyDiff
}

func (ApplyAddons) Name() string { return "apply/addons" }

func (a ApplyAddons) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && len(a.Diff.addons) == 0 {
		return false, "the objects of the CNI, CCM and add-on files match the cluster's"
	}
	return true, ""
}

func (a ApplyAddons) Run(ctx context.Context, r *Run) error {
	d := a.Diff
	if !d.observed {
		return errNotObserved
	}
	for _, f := range d.addons {
		if _, err := r.fx.Apply(ctx, r.api, f); err != nil {
			return err
		}
	}
	return nil
}
