package phases

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// TestEtcdBackupKeepsItsNewest: three on-demand snapshots with keep 2 leave the newest two (each
// with a matching .sha256, 0600) and never touch an upgrade's snapshot.
func TestEtcdBackupKeepsItsNewest(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.37.2", "cp1", "w1")
	stateDir := t.TempDir()
	dir := state.Dir(stateDir).Snapshots()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	upgradeSnap := filepath.Join(dir, "etcd-cp1-v1.36.5-v1.37.2-20261201T000000.000Z.db")
	if err := os.WriteFile(upgradeSnap, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// sha256 of "old"
	if err := os.WriteFile(upgradeSnap+".sha256", []byte("cba06b5736faf67e54b07b561eae94395e774c517a7d910a54369e1263ccfbd4  "+filepath.Base(upgradeSnap)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var saved []string
	for i := 0; i < 3; i++ {
		r := sc.newRun(t, []string{"cp1"})
		r.StateDir = state.Dir(stateDir)
		var path string
		if _, err := Execute(context.Background(), r, []Phase{Connect{}, GatherFacts{}, ClusterIdentity{Policy: PKIIfPresent}, EtcdBackup{Keep: 2, Saved: &path}}); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(filepath.Base(path), "etcd-backup-cp1-") {
			t.Fatalf("saved %s", path)
		}
		saved = append(saved, path)
		time.Sleep(2 * time.Millisecond) // names carry milliseconds
	}
	got := snapshotFiles(t, stateDir)
	want := []string{filepath.Base(saved[1]), filepath.Base(saved[2]), filepath.Base(upgradeSnap)}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("snapshots %v, want %v", got, want)
	}
	if _, err := os.Stat(saved[0] + ".sha256"); !os.IsNotExist(err) {
		t.Errorf("the pruned snapshot's checksum file is still there (%v)", err)
	}
	list, err := ListSnapshots(dir)
	if err != nil || len(list) != 3 || list[0].Backup || !list[2].Backup || list[2].Path != saved[2] {
		t.Errorf("ListSnapshots = %+v, %v", list, err)
	}
}

// TestEtcdBackupFromAnotherControlPlane: with cp1's etcd stopped the snapshot comes from cp2, and
// with cp1 unreachable as well; with no etcd running anywhere the run fails naming each host.
func TestEtcdBackupFromAnotherControlPlane(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.37.2", "cp1", "cp2", "cp3", "w1")
	backup := func(down ...string) (string, error) {
		r := sc.newRun(t, []string{"cp1", "cp2", "cp3"})
		connect := r.Connect
		r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) {
			if slices.Contains(down, h.Name) {
				return nil, &ssh.UnreachableError{Host: h.Name, Address: h.Address, Err: errors.New("no route to host")}
			}
			return connect(ctx, h)
		}
		var path string
		var unreachable []string
		_, err := Execute(context.Background(), r, []Phase{ConnectReachable{Unreachable: &unreachable}, GatherFacts{}, EtcdBackup{Keep: 5, Saved: &path}})
		return path, err
	}
	sc.Host("cp1").StopEtcd()
	if path, err := backup(); err != nil || !strings.HasPrefix(filepath.Base(path), "etcd-backup-cp2-") {
		t.Errorf("cp1's etcd stopped: saved %q, %v; want cp2's", path, err)
	}
	if path, err := backup("cp1", "cp2"); err != nil || !strings.HasPrefix(filepath.Base(path), "etcd-backup-cp3-") {
		t.Errorf("cp1 and cp2 down: saved %q, %v; want cp3's", path, err)
	}
	sc.Host("cp2").StopEtcd()
	sc.Host("cp3").StopEtcd()
	if _, err := backup(); err == nil || !strings.Contains(err.Error(), "cp1") || !strings.Contains(err.Error(), "cp3") {
		t.Errorf("no etcd anywhere: err = %v", err)
	}
}
