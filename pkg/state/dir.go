// Package state locates the operator-side state directory of one cluster (DESIGN.md §2) and
// manages part of it: the PKI and generated secrets (Local), the per-run logs and the run lock. The
// admin kubeconfig and the etcd snapshots are written there by pkg/phases (AdminConfPath,
// SnapshotDir). Specs live in git; keys never sit next to them by default.
package state

import (
	"errors"
	"path/filepath"
)

// DefaultDir is $XDG_STATE_HOME/installer/<cluster>, falling back to ~/.local/state/installer/<cluster>.
func DefaultDir(cluster string, getenv func(string) string, home string) (string, error) {
	if cluster == "" {
		return "", errors.New("state dir: the cluster has no name")
	}
	if x := getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "installer", cluster), nil
	}
	if home == "" {
		return "", errors.New("state dir: no home directory; set --state-dir or INSTALLER_STATE_DIR")
	}
	return filepath.Join(home, ".local", "state", "installer", cluster), nil
}
