package phases

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
