package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEtcdSnapshots lists the state directory's snapshots and checks each against its .sha256: a
// changed one and one without a checksum file are reported, and the command exits 1.
func TestEtcdSnapshots(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	snaps := filepath.Join(dir, "state", "etcd-snapshots")
	must(t, os.MkdirAll(snaps, 0o700))
	write := func(name, content string, withSum bool) {
		must(t, os.WriteFile(filepath.Join(snaps, name), []byte(content), 0o600))
		if withSum {
			sum := sha256.Sum256([]byte(content))
			must(t, os.WriteFile(filepath.Join(snaps, name+".sha256"), []byte(hex.EncodeToString(sum[:])+"  "+name+"\n"), 0o600))
		}
	}
	write("etcd-backup-cp1-20261205T100000.000Z.db", "good", true)
	write("etcd-cp1-v1.36.5-v1.37.2-20261204T100000.000Z.db", "upgrade", true)
	write("etcd-backup-cp1-20261205T110000.000Z.db", "changed", true)
	must(t, os.WriteFile(filepath.Join(snaps, "etcd-backup-cp1-20261205T110000.000Z.db"), []byte("tampered"), 0o600))
	write("etcd-backup-cp1-20261205T120000.000Z.db", "nosum", false)

	env := map[string]string{"INSTALLER_STATE_DIR": filepath.Join(dir, "state")}
	r := runCLI(t, env, dir, "etcd", "snapshots", "-f", spec)
	if r.code != 1 || !strings.Contains(r.stderr, "2 of 4 snapshots do not match their SHA-256 or have none") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("output:\n%s", r.stdout)
	}
	for i, want := range []string{"upgrade  7     ok", "backup   4     ok", "backup   8     MISMATCH", "backup   5     no checksum file"} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("line %d = %q, want %q", i+1, lines[i+1], want)
		}
	}
	if r := runCLI(t, nil, dir, "etcd", "snapshot", "-f", spec, "--keep", "-1"); r.code != 2 || !strings.Contains(r.stderr, "--keep -1: must not be negative") {
		t.Errorf("--keep -1: exit %d\n%s", r.code, r.stderr)
	}
}
