package phases

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases/internal/simhost"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/state"
	"installer.dev/installer/pkg/versions"
)

var testUpgradeOptions = UpgradeOptions{MaxUnavailable: 1, DrainTimeout: 2 * time.Second, WaitTimeout: 2 * time.Second}

// snapshotFiles lists the state directory's etcd snapshots (their .sha256 files checked for mode only).
func snapshotFiles(t *testing.T, stateDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(state.Dir(stateDir).Snapshots())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("snapshot %s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
		if strings.HasSuffix(e.Name(), ".db") {
			out = append(out, e.Name())
			dir := state.Dir(stateDir).Snapshots()
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if line, err := os.ReadFile(filepath.Join(dir, e.Name()+".sha256")); err != nil || string(line) != hex.EncodeToString(sum[:])+"  "+e.Name()+"\n" {
				t.Errorf("%s.sha256 = %q, %v; want the snapshot's digest", e.Name(), line, err)
			}
		}
	}
	return out
}

func (sc *simCluster) assertAt(t *testing.T, version string) {
	t.Helper()
	for _, h := range sc.Hosts() {
		st := h.State()
		if st.KubeletRunning != version || st.Kubeadm != version || st.Kubelet != version || st.Kubectl != version || st.CrashLoop {
			t.Errorf("host %s: %+v; want %s", h.Name(), st, version)
		}
		if spec, _ := sc.spec.Spec.Host(h.Name()); spec.Role == v1alpha1.RoleControlPlane && st.ControlPlane != version {
			t.Errorf("host %s: control plane at %s, want %s", h.Name(), st.ControlPlane, version)
		}
	}
	nodes, _ := sc.API.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable || n.Annotations["installer.dev/cordoned-by"] != "" {
			t.Errorf("node %s left cordoned", n.Name)
		}
	}
}

// TestUpgradeTranscript pins every command the upgrade runs per node role (first control plane:
// snapshot, kubeadm, plan, apply; second control plane: upgrade node; workers: drain, kubeadm
// upgrade node before the kubelet) and the API calls it makes; then a run at the target changes
// nothing and runs nothing but reads.
func TestUpgradeTranscript(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "cp2", "w1", "w2")
	state := t.TempDir()
	r, err := sc.upgrade(t, state, false, testUpgradeOptions)
	if err != nil {
		t.Fatal(err)
	}
	sc.assertAt(t, "v1.37.2")
	checkGolden(t, "upgrade.transcript", sc.transcript(simMarks{}))
	snaps := snapshotFiles(t, state)
	if len(snaps) != 1 || !strings.HasPrefix(snaps[0], "etcd-cp1-v1.36.5-v1.37.2-") {
		t.Errorf("snapshots: %v", snaps)
	}
	if data, _ := os.ReadFile(filepath.Join(state, "etcd-snapshots", snaps[0])); string(data) != "bbolt snapshot of cp1" {
		t.Errorf("snapshot content %q", data)
	}
	if totalChanges(r) == 0 {
		t.Error("no changes counted")
	}

	mark := sc.marks()
	r2, err := sc.upgrade(t, state, false, testUpgradeOptions)
	if err != nil {
		t.Fatal(err)
	}
	if n := totalChanges(r2); n != 0 {
		t.Errorf("re-run at the target made %d changes: %v", n, r2.Changes())
	}
	again := sc.transcript(mark)
	for _, line := range strings.Split(again, "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "== "), line == scripts.Facts.Name, line == leftoverCheck,
			strings.HasPrefix(line, scripts.ManifestImages.Name+" "), strings.HasPrefix(line, "read /etc/kubernetes/admin.conf"):
		default:
			t.Errorf("re-run at the target did %q", line)
		}
	}
	if len(snapshotFiles(t, state)) != 1 {
		t.Error("re-run took another snapshot")
	}
}

// TestUpgradeResumes injects a failure into each step on each kind of node: the run fails naming
// it, the kubelet is never swapped before `kubeadm upgrade` succeeded on that node, and a re-run
// completes the upgrade; a third run does nothing.
func TestUpgradeResumes(t *testing.T) {
	download := func(name string) string {
		return "download.sh binary http://mirror:8080/release/v1.37.2/bin/linux/amd64/" + name
	}
	points := []struct{ host, step, phase string }{
		{"cp1", "etcd.sh snapshot", "upgrade/etcd-snapshot"},
		{"cp1", download("kubeadm"), "upgrade/control-planes"},
		{"cp1", "kubeadm upgrade plan", "upgrade/control-planes"},
		{"cp1", "kubeadm upgrade apply", "upgrade/control-planes"},
		{"cp2", "kubeadm upgrade node", "upgrade/control-planes"},
		{"cp1", download("kubelet"), "upgrade/nodes/control-planes"},
		{"cp2", "systemctl restart kubelet", "upgrade/nodes/control-planes"},
		{"w2", download("kubeadm"), "upgrade/nodes/workers"},
		{"w1", "kubeadm upgrade node", "upgrade/nodes/workers"},
		{"w1", download("kubectl"), "upgrade/nodes/workers"},
		{"w2", "systemctl daemon-reload", "upgrade/nodes/workers"},
	}
	for _, p := range points {
		t.Run(p.host+"/"+p.step, func(t *testing.T) {
			sc := newUpgradeCluster(t, "v1.36.5", "cp1", "cp2", "w1", "w2")
			sc.Host(p.host).FailAt(p.step)
			state := t.TempDir()
			_, err := sc.upgrade(t, state, false, testUpgradeOptions)
			if err == nil {
				t.Fatalf("injected failure at %q on %s did not fail the run", p.step, p.host)
			}
			if !strings.HasPrefix(err.Error(), "phase "+p.phase+": ") || !strings.Contains(err.Error(), p.host) {
				t.Fatalf("error %q does not name phase %s and host %s", err, p.phase, p.host)
			}
			for _, h := range sc.Hosts() {
				if st := h.State(); st.Kubelet == "v1.37.2" && st.KubeletFlags != "v1.37.2" {
					t.Errorf("%s: kubelet swapped before kubeadm upgrade succeeded there", h.Name())
				}
			}
			// A failure before the first control plane moved makes the re-run snapshot again (etcd
			// may have changed since); after it moved, the first snapshot is the one to keep.
			wantSnapshots := 1
			if sc.Host("cp1").State().ControlPlane != "v1.37.2" {
				wantSnapshots = len(snapshotFiles(t, state)) + 1
			}
			if _, err := sc.upgrade(t, state, false, testUpgradeOptions); err != nil {
				t.Fatalf("re-run after the failure: %v", err)
			}
			sc.assertAt(t, "v1.37.2")
			r3, err := sc.upgrade(t, state, false, testUpgradeOptions)
			if err != nil || totalChanges(r3) != 0 {
				t.Errorf("third run: %v, changes %v", err, r3.Changes())
			}
			if n := len(snapshotFiles(t, state)); n != wantSnapshots {
				t.Errorf("%d snapshots, want %d (one per run that started before the first control plane moved; none replaced)", n, wantSnapshots)
			}
		})
	}
}

// TestUpgradeDrainBlocked: a PodDisruptionBudget that never allows the eviction stops the run at
// that node's drain with the pod named; the node stays cordoned by the installer; once evictions
// pass again a re-run finishes and uncordons it.
func TestUpgradeDrainBlocked(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "w1")
	sc.API.BlockEvictions("web")
	state := t.TempDir()
	_, err := sc.upgrade(t, state, false, testUpgradeOptions)
	if err == nil || !strings.Contains(err.Error(), "phase upgrade/nodes/workers: host w1: drain w1: not done within 2s; still on the node: default/web-w1 (blocked by a PodDisruptionBudget)") {
		t.Fatalf("blocked drain: %v", err)
	}
	if st := sc.Host("w1").State(); st.Kubelet != "v1.36.5" || st.KubeletFlags != "v1.36.5" {
		t.Errorf("w1 changed although its drain failed: %+v", st)
	}
	n, _ := sc.API.CoreV1().Nodes().Get(t.Context(), "w1", metav1.GetOptions{})
	if !n.Spec.Unschedulable || n.Annotations["installer.dev/cordoned-by"] != "upgrade" {
		t.Errorf("w1 not cordoned by the upgrade: %+v", n.ObjectMeta.Annotations)
	}
	sc.API.BlockEvictions("")
	if _, err := sc.upgrade(t, state, false, testUpgradeOptions); err != nil {
		t.Fatal(err)
	}
	sc.assertAt(t, "v1.37.2")
}

// TestUpgradeDryRun records a plan per node and changes nothing.
func TestUpgradeDryRun(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "w1")
	state := t.TempDir()
	r, err := sc.upgrade(t, state, true, testUpgradeOptions)
	if err != nil {
		t.Fatal(err)
	}
	sc.assertAtNothingChanged(t, "v1.36.5")
	var got []string
	for _, p := range r.Planned() {
		if p.Command != "" {
			got = append(got, p.Host+": "+p.Command)
		} else {
			got = append(got, p.Host+": upload "+p.File.Path)
		}
	}
	dl := func(host, name string) string {
		u := "http://mirror:8080/release/v1.37.2/bin/linux/amd64/" + name
		return host + ": download.sh binary " + u + " sha256:" + simPin(u) + " /usr/bin/" + name + " 0755 ''"
	}
	// 1.37 pairs with crictl 1.37 (1.36 with 1.36).
	crictl := func(host string) string {
		u := "http://mirror:8080/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz"
		return host + ": download.sh archive " + u + " sha256:" + simPin(u) + " /usr/local/bin v1.37.0 '' ''"
	}
	want := []string{
		"cp1: etcd.sh snapshot etcd-cp1-v1.36.5-v1.37.2-<time>.db",
		"cp1: copy /var/lib/etcd/etcd-cp1-v1.36.5-v1.37.2-<time>.db to " + filepath.Join(state, "etcd-snapshots", "etcd-cp1-v1.36.5-v1.37.2-<time>.db") + " (0600), check its SHA-256, remove it from the host",
		"cp1: upload /etc/kubernetes/installer/upgrade.yaml",
		dl("cp1", "kubeadm"),
		"cp1: kubeadm upgrade plan --config /etc/kubernetes/installer/upgrade.yaml",
		"cp1: kubeadm upgrade apply --config /etc/kubernetes/installer/upgrade.yaml --yes",
		"cp1: cordon node cp1",
		"cp1: drain node cp1 (no pods to evict; timeout 2s)",
		dl("cp1", "kubelet"),
		dl("cp1", "kubectl"),
		crictl("cp1"),
		"cp1: systemctl daemon-reload",
		"cp1: systemctl restart kubelet",
		"cp1: uncordon node cp1",
		"w1: cordon node w1",
		"w1: drain node w1 (evict default/web-w1; timeout 2s)",
		"w1: upload /etc/kubernetes/installer/upgrade.yaml",
		dl("w1", "kubeadm"),
		"w1: kubeadm upgrade node --config /etc/kubernetes/installer/upgrade.yaml",
		dl("w1", "kubelet"),
		dl("w1", "kubectl"),
		crictl("w1"),
		"w1: systemctl daemon-reload",
		"w1: systemctl restart kubelet",
		"w1: uncordon node w1",
	}
	gotText := snapshotTime.ReplaceAllString(strings.Join(got, "\n"), "<time>")
	if gotText != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", gotText, strings.Join(want, "\n"))
	}
}

// TestUpgradeDryRunPlansTheAPIEffects: the cluster-API changes a dry run plans (cordon, drain with
// the pods it evicts, uncordon) are the ones the real upgrade then makes, in the same words.
func TestUpgradeDryRunPlansTheAPIEffects(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "w1")
	state := t.TempDir()
	dry, err := sc.upgrade(t, state, true, testUpgradeOptions)
	if err != nil {
		t.Fatal(err)
	}
	real, err := sc.upgrade(t, state, false, testUpgradeOptions)
	if err != nil {
		t.Fatal(err)
	}
	planned, performed := apiEffects(dry.Planned()), apiEffects(real.Performed())
	if planned != performed {
		t.Errorf("planned:\n%s\nperformed:\n%s", planned, performed)
	}
	for _, want := range []string{"w1: cordon node w1", "w1: drain node w1 (evict default/web-w1; timeout 2s)", "w1: uncordon node w1"} {
		if !strings.Contains(performed, want) {
			t.Errorf("the upgrade did not %s:\n%s", want, performed)
		}
	}
}

// apiEffects lists the cluster-API changes among actions, one per line. (The state directory's
// admin kubeconfig is left out: what kubeadm upgrade renews in it only a real run can see.)
func apiEffects(actions []PlannedAction) string {
	var out []string
	for _, a := range actions {
		for _, verb := range []string{"cordon node ", "uncordon node ", "drain node ", "delete node ", "server-side apply "} {
			if strings.HasPrefix(a.Command, verb) {
				out = append(out, a.Phase+" "+a.Host+": "+a.Command)
			}
		}
	}
	return strings.Join(out, "\n")
}

func (sc *simCluster) assertAtNothingChanged(t *testing.T, version string) {
	t.Helper()
	for _, h := range sc.Hosts() {
		for _, l := range h.Transcript(0) {
			if strings.HasPrefix(l, "write ") {
				t.Errorf("%s on %s", l, h.Name())
			}
		}
		if st := h.State(); st.KubeletRunning != version || st.Kubeadm != version || st.Kubelet != version {
			t.Errorf("changed %s: %+v", h.Name(), st)
		}
	}
	for _, a := range sc.API.Actions() {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			t.Errorf("the cluster was changed: %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// TestUpgradeRefusesDowngrade: a cluster at v1.37.2 with a spec at v1.36.5 is refused before any
// change, exit code 2, with the newest component named.
func TestUpgradeRefusesDowngrade(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.37.2", "cp1", "w1")
	sc.spec.Spec.KubernetesVersion = "v1.36.5"
	_, err := sc.upgrade(t, t.TempDir(), false, testUpgradeOptions)
	want := "phase upgrade/check: refusing to downgrade: the kubelet on cp1 runs v1.37.2, newer than the target v1.36.5 (downgrades are not supported; restore the etcd snapshot taken before the upgrade instead)"
	if err == nil || err.Error() != want || exitcode.Of(err) != exitcode.InvalidInput {
		t.Fatalf("got %v (exit %d)\nwant %s", err, exitcode.Of(err), want)
	}
	sc.assertAtNothingChanged(t, "v1.37.2")
}

// TestCheckUpgrade pins the version rules and their messages, with a release table that has a gap.
func TestCheckUpgrade(t *testing.T) {
	releases := []versions.Release{{Kubernetes: "v1.32.9"}, {Kubernetes: "v1.34.10"}, {Kubernetes: "v1.35.8"}, {Kubernetes: "v1.34.2"}}
	obs := func(vs ...string) []Observed {
		var out []Observed
		for i, v := range vs {
			out = append(out, Observed{What: "kubelet on n" + string(rune('1'+i)), Version: v})
		}
		return out
	}
	tests := []struct {
		name     string
		observed []Observed
		target   string
		want     string
	}{
		{"next minor", obs("v1.34.10", "v1.34.10"), "v1.35.8", ""},
		{"resume: some nodes at the target", obs("v1.35.8", "v1.34.10"), "v1.35.8", ""},
		{"patch", obs("v1.34.2"), "v1.34.10", ""},
		{"at the target", obs("v1.35.8"), "v1.35.8", ""},
		{"downgrade a minor", obs("v1.34.10", "v1.35.8"), "v1.34.10",
			"refusing to downgrade: the kubelet on n2 runs v1.35.8, newer than the target v1.34.10 (downgrades are not supported; restore the etcd snapshot taken before the upgrade instead)"},
		{"downgrade a patch", obs("v1.34.10"), "v1.34.2",
			"refusing to downgrade: the kubelet on n1 runs v1.34.10, newer than the target v1.34.2 (downgrades are not supported; restore the etcd snapshot taken before the upgrade instead)"},
		{"skip one minor", obs("v1.35.8", "v1.33.4"), "v1.35.8",
			"cannot upgrade from v1.33.4 to v1.35.8 in one step: the kubelet on n2 runs v1.33.4, and Kubernetes upgrades one minor version at a time. Upgrade in this order:\n" +
				"  1. installer upgrade --to v1.34.10\n" +
				"  2. installer upgrade --to v1.35.8"},
		{"skip over an unsupported minor", obs("v1.31.0"), "v1.34.10",
			"cannot upgrade from v1.31.0 to v1.34.10 in one step: the kubelet on n1 runs v1.31.0, and Kubernetes upgrades one minor version at a time. Upgrade in this order:\n" +
				"  1. installer upgrade --to v1.32.9\n" +
				"  2. v1.33: no supported release of this minor; use an installer release that supports it\n" +
				"  3. installer upgrade --to v1.34.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUpgrade(tt.observed, tt.target, releases)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected refusal: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("got %v\nwant %s", err, tt.want)
			case tt.want != "" && exitcode.Of(err) != exitcode.InvalidInput:
				t.Fatalf("exit code %d, want %d", exitcode.Of(err), exitcode.InvalidInput)
			}
		})
	}
}

// TestRetiredMinorUpgrades: a cluster on a minor the installer no longer installs (1.34) is still
// upgraded to the next supported one with the real table, and told the chain when it asks for more.
func TestRetiredMinorUpgrades(t *testing.T) {
	old := []Observed{{What: "kubelet on n1", Version: "v1.34.10"}}
	if err := CheckUpgrade(old, "v1.35.8", versions.Releases()); err != nil {
		t.Fatalf("1.34 -> 1.35 refused: %v", err)
	}
	err := CheckUpgrade(old, "v1.37.2", versions.Releases())
	if err == nil || !strings.Contains(err.Error(), "1. installer upgrade --to v1.35.8\n  2. installer upgrade --to v1.36.5\n  3. installer upgrade --to v1.37.2") {
		t.Fatalf("1.34 -> 1.37: %v", err)
	}
}

// TestUpgradeKeepsAdminCordon: a node an administrator cordoned is drained and upgraded like the
// others but stays cordoned; the installer's mark never lands on it.
func TestUpgradeKeepsAdminCordon(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "w1", "w2")
	ctx := t.Context()
	n, _ := sc.API.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
	n.Spec.Unschedulable = true
	if _, err := sc.API.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.upgrade(t, t.TempDir(), false, testUpgradeOptions); err != nil {
		t.Fatal(err)
	}
	n, _ = sc.API.CoreV1().Nodes().Get(ctx, "w1", metav1.GetOptions{})
	if !n.Spec.Unschedulable || n.Annotations["installer.dev/cordoned-by"] != "" {
		t.Errorf("w1 after the upgrade: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
	if st := sc.Host("w1").State(); st.KubeletRunning != "v1.37.2" {
		t.Errorf("w1 not upgraded: %+v", st)
	}
	if _, err := sc.API.CoreV1().Pods("default").Get(ctx, "web-w1", metav1.GetOptions{}); err == nil {
		t.Error("w1 was not drained")
	}
}

// TestUpgradePackages: with install.source package, each node gets kubeadm alone from the target
// minor's repository first, `kubeadm upgrade node` next, and the kubelet and kubectl packages only
// after it; the sources file names the new minor.
func TestUpgradePackages(t *testing.T) {
	spec := upgradeSpec(t, "cp1", "w1")
	spec.Spec.Install.Source = v1alpha1.InstallPackage
	spec.Spec.Install.PackageRepositoryKeyFingerprint = simhost.RepositoryKeyFingerprint
	sc := runningCluster(t, spec, "v1.36.5")
	if _, err := sc.upgrade(t, t.TempDir(), false, testUpgradeOptions); err != nil {
		t.Fatal(err)
	}
	sc.assertAt(t, "v1.37.2")
	for _, name := range []string{"cp1", "w1"} {
		var order []string
		for _, c := range sc.Host(name).Calls() {
			line := strings.Join(c.Cmd.Args, " ")
			switch {
			case strings.Contains(line, "kubeadm=1.37.2-1.1"):
				order = append(order, "install kubeadm")
			case strings.Contains(line, "kubelet=1.37.2-1.1"):
				order = append(order, "install kubelet")
			case strings.HasPrefix(line, "kubeadm upgrade"):
				order = append(order, strings.Join(c.Cmd.Args[:3], " "))
			case c.Op == "write" && c.Path == "/etc/apt/sources.list.d/kubernetes.list" && !strings.Contains(string(c.File.Content), "/v1.37/deb/"):
				t.Errorf("%s: sources file without the v1.37 repository:\n%s", name, c.File.Content)
			}
		}
		want := "install kubeadm, kubeadm upgrade node, install kubelet"
		if name == "cp1" {
			want = "install kubeadm, kubeadm upgrade plan, kubeadm upgrade apply, install kubelet"
		}
		if got := strings.Join(order, ", "); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

// TestUpgradeStopsOnDeadNode: a node whose kubelet stopped renewing its Lease counts as down even
// while its Ready condition is stale (a restarted controller-manager keeps it Ready for a while):
// nothing is drained into a cluster that has lost a node.
func TestUpgradeStopsOnDeadNode(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "w1", "w2")
	ctx := t.Context()
	lease, err := sc.API.CoordinationV1().Leases("kube-node-lease").Get(ctx, "w2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now().Add(-5 * time.Minute)}
	if _, err := sc.API.CoordinationV1().Leases("kube-node-lease").Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc.API.ClearActions()
	_, err = sc.upgrade(t, t.TempDir(), false, testUpgradeOptions)
	want := "phase upgrade/health: nodes ready: not reached within 2s (last seen: waiting for w2 (not Ready: its kubelet stopped renewing its lease))"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	sc.assertAtNothingChanged(t, "v1.36.5")
}

// TestSaveSnapshotNeverReplaces: a snapshot is a backup; one of the same name is never overwritten,
// and a copy that fails (a damaged transfer) leaves nothing behind.
func TestSaveSnapshotNeverReplaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd-snapshots")
	content := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	p, err := saveSnapshot(dir, "etcd-cp1.db", content("first"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", p, st, err)
	}
	if _, err := saveSnapshot(dir, "etcd-cp1.db", content("second")); err == nil {
		t.Fatal("a second snapshot of the same name was saved")
	}
	if got, _ := os.ReadFile(p); string(got) != "first" {
		t.Errorf("the first snapshot now holds %q", got)
	}
	damaged := func(w io.Writer) error {
		_, _ = io.WriteString(w, "half")
		return errors.New("SHA-256 differs")
	}
	if _, err := saveSnapshot(dir, "etcd-cp1-other.db", damaged); err == nil {
		t.Fatal("a damaged copy was saved")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files in %s, want the first snapshot only (no temporary or damaged file left)", len(entries), dir)
	}
}

// TestNextUpgrade: a run at the target names the next minor's release, as kubeadm's plan does.
func TestNextUpgrade(t *testing.T) {
	rs := versions.Releases()
	if got := nextUpgrade("v1.36.5", rs); got != "; v1.37.2 is available: set kubernetesVersion: v1.37.2 (or pass --to v1.37.2)" {
		t.Errorf("after 1.36: %q", got)
	}
	if got := nextUpgrade(versions.Default().Kubernetes, rs); got != "" {
		t.Errorf("after the newest: %q", got)
	}
}
