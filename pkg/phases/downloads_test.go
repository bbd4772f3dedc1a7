package phases

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
)

// withPinsOnly gives sc's spec an install.checksumsFile that pins only the lines given.
func withPinsOnly(t *testing.T, sc *simCluster, lines ...string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pins.sha256")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sc.spec.Spec.Install.ChecksumsFile = p
	in, err := manifests.LoadInputs(context.Background(), &sc.spec.Spec, manifests.LoadOptions{VRRPPassword: "vrrppass", HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	sc.in = in
}

// TestCreateRefusesUnpinnedDownloads: with a mirror and a checksums file that misses a file, create
// stops in preflight, before any host is changed, naming every missing file.
func TestCreateRefusesUnpinnedDownloads(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	kubeadm := "http://mirror:8080/release/v1.36.5/bin/linux/amd64/kubeadm"
	withPinsOnly(t, sc, simPin(kubeadm)+"  release/v1.36.5/bin/linux/amd64/kubeadm")
	mark := sc.marks()
	r, err := sc.run(t, hostPhases())
	var coded *exitcode.Error
	if err == nil || !errors.As(err, &coded) || coded.Code != exitcode.Preflight {
		t.Fatalf("err %v, want a preflight refusal", err)
	}
	msg := err.Error()
	for _, want := range []string{"phase preflight", "6 downloads have no pinned SHA-256", "nothing was changed",
		"\n  release/v1.36.5/bin/linux/amd64/kubelet", "\n  opencontainers/runc/releases/download/v1.5.3/runc.amd64",
		"install.checksumsFile"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "amd64/kubeadm\n") {
		t.Errorf("the pinned kubeadm is listed:\n%s", msg)
	}
	sc.changedNothing(t, r, mark)
}

// TestUpgradeRefusesUnpinnedDownloads: an upgrade whose target's files are not pinned stops at its
// check, before the etcd snapshot or any other change.
func TestUpgradeRefusesUnpinnedDownloads(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "w1")
	withPinsOnly(t, sc, "# nothing pinned")
	_, err := sc.upgrade(t, t.TempDir(), false, testUpgradeOptions)
	var coded *exitcode.Error
	if err == nil || !errors.As(err, &coded) || coded.Code != exitcode.Preflight ||
		!strings.Contains(err.Error(), "release/v1.37.2/bin/linux/amd64/kubeadm") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("err %v, want a refusal naming the target's kubeadm", err)
	}
	sc.assertAtNothingChanged(t, "v1.36.5")
	for _, h := range sc.Hosts() {
		for _, l := range h.Transcript(0) {
			if strings.Contains(l, "etcd.sh snapshot") || strings.Contains(l, "download.sh") {
				t.Errorf("%s ran %s", h.Name(), l)
			}
		}
	}
}

// TestBundleNeedsNoPins: a bundle is the user's local copy; its own checksum files are used when
// nothing pins a file.
func TestBundleNeedsNoPins(t *testing.T) {
	c := createSpecWith(t, func(s *v1alpha1.ClusterSpec) {
		s.Install.Source, s.Install.BundleDir = v1alpha1.InstallBundle, t.TempDir()
	})
	sc := newSimCluster(t, c)
	withPinsOnly(t, sc, "# nothing pinned")
	r := sc.newRun(t, nil)
	if err := checkDownloads(r); err != nil {
		t.Errorf("bundle: %v", err)
	}
}

// TestPreflightChecksWhatIsDownloaded: the files install.Downloads lists (what preflight and the
// upgrade's check hold against the pins) are exactly the files create downloads, and include every
// file an upgrade downloads. The two lists are built apart; this keeps them one.
func TestPreflightChecksWhatIsDownloaded(t *testing.T) {
	downloaded := func(sc *simCluster, mark simMarks) []string {
		seen := map[string]bool{}
		for _, l := range strings.Split(sc.transcript(mark), "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[len(f)-1] != "" {
				for i, w := range f {
					if w == "download.sh" && i+2 < len(f) {
						seen[strings.Trim(f[i+2], "'")] = true
					}
				}
			}
		}
		return slices.Sorted(maps.Keys(seen))
	}
	sc := newSimCluster(t, createSpec(t))
	mark := sc.marks()
	sc.create(t)
	got := downloaded(sc, mark)
	want, err := install.Downloads(&sc.spec.Spec, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("create downloaded\n  %s\npreflight checks\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	up := newUpgradeCluster(t, "v1.36.5", "cp1", "w1")
	mark = up.marks()
	if _, err := up.upgrade(t, t.TempDir(), false, testUpgradeOptions); err != nil {
		t.Fatal(err)
	}
	checked, err := install.Downloads(&up.spec.Spec, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	upgraded := downloaded(up, mark)
	if len(upgraded) < 3 {
		t.Errorf("the upgrade downloaded %v; want at least kubeadm, kubelet and kubectl", upgraded)
	}
	for _, u := range upgraded {
		if !slices.Contains(checked, u) {
			t.Errorf("the upgrade downloaded %s, which its check does not hold against the pins", u)
		}
	}
}
