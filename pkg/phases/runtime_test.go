package phases

import (
	"maps"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/phases/internal/simhost"
)

// phasesThrough are create's phases up to and including the named one.
func phasesThrough(t *testing.T, name string) []Phase {
	t.Helper()
	var out []Phase
	for _, p := range CreateCluster() {
		out = append(out, p)
		if p.Name() == name {
			return out
		}
	}
	t.Fatalf("create has no phase %s", name)
	return nil
}

// withVersion sets the spec's Kubernetes version.
func withVersion(v string) func(*v1alpha1.ClusterSpec) {
	return func(s *v1alpha1.ClusterSpec) { s.KubernetesVersion = v }
}

func distroContainerd(s *simhost.Seed) { s.DistroContainerd = true }

// TestRuntimeReplacesOnlyHostsThatAreNoNodes: a host that is not a node yet gets containerd's
// release binaries over the distribution's containerd; a node keeps its containerd (the upgrade
// replaces it after a drain), and its unit and config stay those of the containerd it runs.
func TestRuntimeReplacesOnlyHostsThatAreNoNodes(t *testing.T) {
	sc := runningClusterWith(t, createSpecWith(t, withVersion("v1.35.8"), "cp1"), "v1.35.8", distroContainerd)
	fresh := newSimCluster(t, createSpecWith(t, withVersion("v1.35.8"), "cp1"))
	fresh.Host("cp1").InstallPackage("containerd", "")
	for _, c := range []struct {
		name    string
		sc      *simCluster
		replace bool
	}{{"node with Debian's containerd", sc, false}, {"fresh host with Debian's containerd", fresh, true}} {
		t.Run(c.name, func(t *testing.T) {
			h := c.sc.Host("cp1")
			if _, err := c.sc.run(t, phasesThrough(t, "runtime")); err != nil {
				t.Fatal(err)
			}
			cmds := strings.Join(h.Commands(0), "\n")
			downloaded := strings.Contains(cmds, "containerd-2.3.7-linux-amd64.tar.gz") && strings.Contains(cmds, "runc.amd64")
			_, unit := h.File("/etc/systemd/system/containerd.service")
			cfg, _ := h.File("/etc/containerd/config.toml")
			if downloaded != c.replace || unit != c.replace {
				t.Fatalf("downloaded %v, unit written %v, want %v:\n%s", downloaded, unit, c.replace, cmds)
			}
			wantCfg := map[bool]string{false: "version = 2", true: "version = 3"}[c.replace]
			if !strings.Contains(string(cfg.Content), wantCfg) {
				t.Errorf("config.toml lacks %q:\n%s", wantCfg, cfg.Content)
			}
			if want := map[bool]string{false: "1.6.20~ds1", true: "2.3.7"}[c.replace]; h.State().Containerd != want {
				t.Errorf("containerd %q, want %q", h.State().Containerd, want)
			}
			// Converged: a second run downloads and restarts nothing.
			n := h.Mark()
			if _, err := c.sc.run(t, phasesThrough(t, "runtime")); err != nil {
				t.Fatal(err)
			}
			for _, cmd := range h.Commands(n) {
				if strings.HasPrefix(cmd, "download.sh") || strings.HasPrefix(cmd, "systemctl restart") || strings.HasPrefix(cmd, "apt.sh") {
					t.Errorf("converged re-run ran %q", cmd)
				}
			}
		})
	}
}

// TestRuntimeRefusesATooOldContainerd: Kubernetes 1.36 and later need containerd 2. A node on
// Debian's containerd 1.6 is refused before anything changes, with the upgrade as the fix; with
// source package, a fresh host's distribution containerd is refused too.
func TestRuntimeRefusesATooOldContainerd(t *testing.T) {
	node := runningClusterWith(t, createSpecWith(t, withVersion("v1.37.2"), "cp1"), "v1.37.2", distroContainerd)
	pkg := newSimCluster(t, createSpecWith(t, func(s *v1alpha1.ClusterSpec) {
		s.KubernetesVersion = "v1.37.2"
		s.ContainerRuntime.Containerd = v1alpha1.Containerd{Source: v1alpha1.InstallPackage}
	}, "cp1"))
	pkg.Host("cp1").InstallPackage("containerd", "")
	for _, c := range []struct {
		name, fix string
		sc        *simCluster
	}{
		{"node", "run installer upgrade", node},
		{"package source", "set spec.containerRuntime.containerd.source: binary", pkg},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := c.sc.Host("cp1").Mark()
			_, err := c.sc.run(t, phasesThrough(t, "runtime"))
			if err == nil || !strings.Contains(err.Error(), "phase preflight") || !strings.Contains(err.Error(), "containerd 1.6.20") || !strings.Contains(err.Error(), c.fix) {
				t.Fatalf("error %v; want preflight to refuse containerd 1.6.20 with %q", err, c.fix)
			}
			for _, cmd := range c.sc.Host("cp1").Commands(n) {
				if !strings.HasPrefix(cmd, "facts.sh") && !strings.HasPrefix(cmd, "true") && cmd != leftoverCheck {
					t.Errorf("refused run changed the host: %q", cmd)
				}
			}
		})
	}
}

// TestUpgradeReplacesContainerd: a 1.35 cluster made on Debian's containerd 1.6 moves to 1.36 (which
// needs containerd 2): each node gets containerd's release binaries after it is drained and before
// its kubelet changes, the runtime's files follow (config version 3, the unit), the kubelet restarts
// on it. A failure in the middle resumes; a run at the target changes nothing.
func TestUpgradeReplacesContainerd(t *testing.T) {
	spec := simSpec(t, "v1.36.5", v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: "http://mirror:8080", ArtifactMirror: "http://mirror:8080"},
		func(s *v1alpha1.ClusterSpec) { s.CNI = v1alpha1.CNI{Plugin: v1alpha1.CNINone} }, "cp1", "w1")
	sc := runningClusterWith(t, spec, "v1.35.8", distroContainerd)
	state := t.TempDir()
	// The dry run plans the runtime's files for the containerd it would install, not the old one.
	dry, err := sc.upgrade(t, state, true, testUpgradeOptions)
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]string{}
	for _, p := range dry.Planned() {
		if p.File != nil && p.Host == "w1" {
			planned[p.File.Path] = string(p.File.Display)
		}
	}
	if _, ok := planned["/etc/systemd/system/containerd.service"]; !ok || !strings.Contains(planned["/etc/containerd/config.toml"], "version = 3") {
		t.Errorf("the dry run does not plan containerd 2's unit and config on w1: %v", slices.Collect(maps.Keys(planned)))
	}
	if st := sc.Host("w1").State(); st.Containerd != "1.6.20~ds1" {
		t.Fatalf("the dry run changed w1's containerd: %q", st.Containerd)
	}
	const archive = "download.sh archive http://mirror:8080/containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz"
	sc.Host("w1").FailAt(archive)
	if _, err := sc.upgrade(t, state, false, testUpgradeOptions); err == nil || !strings.Contains(err.Error(), "w1") {
		t.Fatalf("injected failure on w1: %v", err)
	}
	// The failure came at the download of containerd: the node was drained before it.
	if n, err := sc.API.CoreV1().Nodes().Get(t.Context(), "w1", metav1.GetOptions{}); err != nil || !n.Spec.Unschedulable || n.Annotations["installer.dev/cordoned-by"] != "upgrade" {
		t.Fatalf("w1 was not cordoned by the upgrade before containerd was replaced: %v %+v", err, n)
	}
	if _, err := sc.upgrade(t, state, false, testUpgradeOptions); err != nil {
		t.Fatal(err)
	}
	sc.assertAt(t, "v1.36.5")
	for _, h := range sc.Hosts() {
		if st := h.State(); st.Containerd != "2.3.7" {
			t.Errorf("%s runs containerd %q, want 2.3.7", h.Name(), st.Containerd)
		}
		cfg, _ := h.File("/etc/containerd/config.toml")
		if _, unit := h.File("/etc/systemd/system/containerd.service"); !unit || !strings.Contains(string(cfg.Content), "version = 3") {
			t.Errorf("%s: unit written %v, config:\n%s", h.Name(), unit, cfg.Content)
		}
		cmds := h.Commands(0)
		at := func(prefix string) int {
			for i, c := range cmds {
				if strings.HasPrefix(c, prefix) {
					return i
				}
			}
			return -1
		}
		get, restart, kubelet := at(archive), at("systemctl restart containerd"), at("download.sh binary http://mirror:8080/release/v1.36.5/bin/linux/amd64/kubelet")
		if get < 0 || restart < get || kubelet < restart {
			t.Errorf("%s: order containerd %d, restart %d, kubelet %d:\n%s", h.Name(), get, restart, kubelet, strings.Join(cmds, "\n"))
		}
	}
	marks := sc.marks()
	if _, err := sc.upgrade(t, state, false, testUpgradeOptions); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(sc.transcript(marks), "\n") {
		if strings.Contains(line, "download.sh") || strings.Contains(line, "systemctl restart") {
			t.Errorf("a run at the target changed something: %s", line)
		}
	}
}
