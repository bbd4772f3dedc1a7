package phases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// EtcdSnapshot saves etcd with etcdctl inside the first control plane's etcd pod, verifies it with
// etcdutl there, copies it to <state>/etcd-snapshots/ (0600) and checks the copy's SHA-256. It runs
// while the first control plane is still at the old version; once kubeadm has moved it, the
// snapshot of an earlier run is the one that matters and none is taken.
type EtcdSnapshot struct{ st *upgradeState }

func (EtcdSnapshot) Name() string { return "upgrade/etcd-snapshot" }

func (e EtcdSnapshot) ShouldRun(r *Run) (bool, string) {
	p := e.st
	if why := p.doneReason(); why != "" {
		return false, why
	}
	cp, err := r.firstControlPlane()
	if err == nil && p.controlPlaneDone(r, cp) {
		return false, "the first control plane already runs " + p.Target + " (the snapshot was taken before it moved)"
	}
	return true, ""
}

func (e EtcdSnapshot) Run(ctx context.Context, r *Run) error {
	cp, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	p := e.st
	if !p.checked {
		return errNotChecked
	}
	// Milliseconds: a re-run right after a failure takes its own snapshot, never one of the same name.
	name := fmt.Sprintf("etcd-%s-%s-%s-%s.db", cp.Name(), p.Nodes[cp.Name()].ControlPlane, p.Target, time.Now().UTC().Format(snapshotTimeFormat))
	_, err = snapshotEtcd(ctx, r, cp, name)
	return err
}

// snapshotTimeFormat is the UTC time in a snapshot's name.
const snapshotTimeFormat = "20060102T150405.000Z"

// snapshotEtcd saves etcd as name with etcdctl inside cp's etcd pod, verifies it with etcdutl there,
// streams it into <state>/etcd-snapshots/ (0600) with its SHA-256 beside it (name.sha256, in
// sha256sum's format), checks the copy against the host's digest and removes the host's file. It
// returns the local path.
func snapshotEtcd(ctx context.Context, r *Run, cp *Host, name string) (string, error) {
	start := time.Now()
	res, err := cp.Exec(ctx, ssh.Cmd{Args: scripts.Etcd.Args("snapshot", name)})
	if err != nil {
		return "", fmt.Errorf("etcd snapshot on %s: %w", cp.Name(), err)
	}
	dir := r.StateDir.Snapshots()
	remote := constants.EtcdDataDir + "/" + name
	local := filepath.Join(dir, name)
	what := "copy " + remote + " to " + local + " (0600), check its SHA-256, remove it from the host"
	return local, r.fx.Then(ctx, cp, what, func(ctx context.Context) error {
		status, sum, err := parseSnapshotOutput(res.Stdout)
		if err != nil {
			return fmt.Errorf("etcd snapshot on %s: %w", cp.Name(), err)
		}
		// Streamed into the state directory and hashed on the way: a snapshot of several GB never
		// sits in memory.
		var size int64
		local, err := saveSnapshot(dir, name, func(w io.Writer) error {
			h := sha256.New()
			cw := &byteCounter{}
			if err := cp.CopyFile(ctx, remote, io.MultiWriter(w, h, cw)); err != nil {
				return fmt.Errorf("copy the etcd snapshot from %s: %w", cp.Name(), err)
			}
			size = cw.n
			if got := hex.EncodeToString(h.Sum(nil)); got != sum {
				return fmt.Errorf("etcd snapshot copied from %s is damaged: SHA-256 %s, on the host %s", cp.Name(), got, sum)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("etcd snapshot: %w", err)
		}
		if err := writePrivate(local+".sha256", []byte(sum+"  "+name+"\n"), false); err != nil {
			return fmt.Errorf("etcd snapshot: %w", err)
		}
		// The copy is in the state directory; etcd's data directory is no place to keep it.
		if _, err := cp.Exec(ctx, ssh.Cmd{Args: []string{"rm", "-f", remote}}); err != nil {
			return fmt.Errorf("remove the snapshot from %s: %w", cp.Name(), err)
		}
		r.Log.Info("etcd snapshot saved and verified", "path", local, "bytes", size, "revision", status.Revision,
			"keys", status.TotalKey, "etcdutl hash", status.Hash, "seconds", time.Since(start).Seconds())
		return nil
	})
}

// saveSnapshot writes a snapshot into dir (0700) as a new 0600 file, its content from fill, and
// returns its path. A backup is never replaced (writePrivate without replace fails when the name
// exists), and nothing is left when fill fails.
func saveSnapshot(dir, name string, fill func(io.Writer) error) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	local := filepath.Join(dir, name)
	if err := writePrivateFrom(local, fill, false); err != nil {
		return "", fmt.Errorf("keep %s: %w", local, err)
	}
	return local, nil
}

// writePrivate writes a state-directory file readable by its owner only (writePrivateFrom).
func writePrivate(path string, data []byte, replace bool) error {
	return writePrivateFrom(path, func(w io.Writer) error { _, err := w.Write(data); return err }, replace)
}

// writePrivateFrom writes a state-directory file readable by its owner only, from the first byte:
// fill writes the content to a fresh temporary file (0600) beside path, which is synced, then
// renamed over path (replace) or hard-linked to it, which fails when path exists.
func writePrivateFrom(path string, fill func(io.Writer) error, replace bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if replace {
		return os.Rename(tmp.Name(), path)
	}
	return os.Link(tmp.Name(), path)
}

// byteCounter counts the bytes written to it.
type byteCounter struct{ n int64 }

func (b *byteCounter) Write(p []byte) (int, error) { b.n += int64(len(p)); return len(p), nil }

// snapshotStatus is `etcdutl snapshot status -w json`.
type snapshotStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
}

// parseSnapshotOutput reads etcdutl's JSON status line and the file's SHA-256 after it.
func parseSnapshotOutput(out []byte) (snapshotStatus, string, error) {
	var st snapshotStatus
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 {
		return st, "", fmt.Errorf("unexpected output %q", out)
	}
	sum := strings.TrimSpace(lines[len(lines)-1])
	if err := json.Unmarshal([]byte(strings.Join(lines[:len(lines)-1], "\n")), &st); err != nil {
		return st, "", fmt.Errorf("etcdutl snapshot status: %w", err)
	}
	if st.TotalKey == 0 || st.Revision == 0 {
		return st, "", fmt.Errorf("etcdutl finds an empty snapshot (revision %d, %d keys)", st.Revision, st.TotalKey)
	}
	if len(sum) != 64 {
		return st, "", fmt.Errorf("no SHA-256 of the snapshot in %q", sum)
	}
	return st, sum, nil
}
