//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// specWithout writes a copy of the lab's spec without the named hosts next to it (so its relative
// key paths still resolve) and returns its path.
func (c *labCluster) specWithout(name string, drop ...string) string {
	c.t.Helper()
	raw, err := v1alpha1.LoadFile(c.Lab.SpecFile())
	if err != nil {
		fatal(c.t, err)
	}
	skip := map[string]bool{}
	for _, d := range drop {
		skip[d] = true
	}
	var kept []v1alpha1.Host
	for _, h := range raw.Spec.Hosts {
		if !skip[h.Name] {
			kept = append(kept, h)
		}
	}
	raw.Spec.Hosts = kept
	out, err := yaml.Marshal(raw)
	if err != nil {
		fatal(c.t, err)
	}
	p := filepath.Join(c.Lab.Dir(), name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		fatal(c.t, err)
	}
	return p
}

// TestScenario3JoinNode: a cluster of cp1, w1, w2 gets a fourth host with `installer join node
// --host w3`; w3 becomes Ready and initialised by the CCM, and the existing nodes see no change
// (checksums of managed files, kubelet and containerd restart counts).
func TestScenario3JoinNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "4")
	three := c.specWithout("cluster-3.yaml", "w3")
	if r := c.installerSpec(three, "create", "cluster"); r.Code != 0 {
		fatalf(t, "create cluster of 3: exit %d\n%s", r.Code, r.Stderr)
	}
	existing := []string{"cp1", "w1", "w2"}
	before := c.managedState(existing...)

	r := c.installer("join", "node", "--host", "w3")
	if r.Code != 0 {
		fatalf(t, "join node: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE join node w3: %s", r.Wall.Round(time.Millisecond))
	reportTimings(t, r)
	checkNodes(ctx, t, c, c.kube())
	after := c.managedState(existing...)
	for _, h := range existing {
		if before[h] != after[h] {
			errorf(t, "join node changed existing host %s:\nbefore:\n%s\nafter:\n%s", h, before[h], after[h])
		}
	}
	if !strings.Contains(r.Stderr, "joined w3") {
		errorf(t, "join output:\n%s", r.Stderr)
	}
	// Joining again is a no-op.
	again := c.installer("join", "node", "--host", "w3")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "second join: exit %d, changes %v\n%s", again.Code, again.Changes, again.Stderr)
	}
}
