package phases

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// backupPrefix names the snapshots `installer etcd snapshot` takes: etcd-backup-<host>-<time>.db.
// Only these are ever pruned; an upgrade's snapshot (etcd-<host>-<from>-<to>-<time>.db) is kept.
const backupPrefix = "etcd-backup-"

// EtcdBackup takes a verified etcd snapshot into the state directory (snapshotEtcd) on the first
// control plane that is reachable and has a running etcd, and keeps the newest Keep snapshots of its own kind, removing older ones with their
// checksum files.
type EtcdBackup struct {
	Keep int
	// Saved receives the local path of the snapshot.
	Saved *string
}

func (EtcdBackup) Name() string { return "etcd/snapshot" }

func (b EtcdBackup) Run(ctx context.Context, r *Run) error {
	// The first control plane that answers and has a running etcd: a snapshot is most needed when
	// something is already wrong.
	var errs []error
	for _, cp := range connected(r.TargetsWithRole(v1alpha1.RoleControlPlane)) {
		name := backupPrefix + cp.Name() + "-" + time.Now().UTC().Format(snapshotTimeFormat) + ".db"
		local, err := snapshotEtcd(ctx, r, cp, name)
		if err != nil {
			r.Log.Warn("no etcd snapshot from this control plane; trying the next", "host", cp.Name(), "error", err)
			errs = append(errs, err)
			continue
		}
		*b.Saved = local
		errs = nil
		break
	}
	if *b.Saved == "" {
		if len(errs) == 0 {
			return errors.New("no control plane could be reached to take the snapshot from")
		}
		return errors.Join(errs...)
	}
	if r.DryRun {
		return nil
	}
	removed, err := pruneBackups(r.StateDir.Snapshots(), b.Keep)
	for _, p := range removed {
		r.Log.Info("removed an older etcd snapshot (retention)", "path", p, "keep", b.Keep)
	}
	return err
}

// Snapshot is one etcd snapshot in the state directory.
type Snapshot struct {
	Path  string
	Size  int64
	Taken time.Time
	// Backup: taken by `etcd snapshot` (pruned by its retention); else before an upgrade.
	Backup bool
}

// ListSnapshots lists the snapshots in dir, oldest first.
func ListSnapshots(dir string) ([]Snapshot, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, "etcd-") || !strings.HasSuffix(name, ".db") {
			continue
		}
		base := strings.TrimSuffix(name, ".db")
		if len(base) < len(snapshotTimeFormat) {
			continue
		}
		taken, err := time.Parse(snapshotTimeFormat, base[len(base)-len(snapshotTimeFormat):])
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, Snapshot{Path: filepath.Join(dir, name), Size: info.Size(), Taken: taken, Backup: strings.HasPrefix(name, backupPrefix)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Taken.Before(out[j].Taken) })
	return out, nil
}

// pruneBackups removes all but the newest keep backups in dir (and their .sha256 files), returning
// the removed paths. An upgrade's snapshots are never touched; keep below 1 keeps everything.
func pruneBackups(dir string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, nil
	}
	all, err := ListSnapshots(dir)
	if err != nil {
		return nil, err
	}
	var backups []Snapshot
	for _, s := range all {
		if s.Backup {
			backups = append(backups, s)
		}
	}
	var removed []string
	for len(backups) > keep {
		old := backups[0]
		backups = backups[1:]
		for _, p := range []string{old.Path, old.Path + ".sha256"} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return removed, fmt.Errorf("retention: %w", err)
			}
		}
		removed = append(removed, old.Path)
	}
	return removed, nil
}
