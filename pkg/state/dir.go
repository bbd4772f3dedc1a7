// Package state locates the operator-side state directory of one cluster (DESIGN.md §2), names its
// layout (Dir) and manages part of it: the PKI and generated secrets (Local), the per-run logs and
// the run lock. The admin kubeconfig and the etcd snapshots are written there by pkg/phases. Specs
// live in git; keys never sit next to them by default.
package state

import (
	"errors"
	"path/filepath"
)

// Dir is the state directory of one cluster. Its methods are the one place that names what it
// holds:
//
//	pki/             the cluster's CAs and service-account keys (Local)
//	secrets/<name>   generated secrets, 0600 (Local)
//	admin.conf       the admin kubeconfig
//	etcd-snapshots/  etcd snapshots taken before upgrades
//	logs/            one directory of host logs per run (RunLogDir)
//	lock             the run lock (Acquire)
type Dir string

// String is the directory's path.
func (d Dir) String() string { return string(d) }

// PKI is the directory of the cluster's PKI (pki.Load, pki.Bundle.Save).
func (d Dir) PKI() string { return d.join("pki") }

// Secrets is the directory of the generated secrets.
func (d Dir) Secrets() string { return d.join("secrets") }

// Secret is the file of one generated secret.
func (d Dir) Secret(name string) string { return filepath.Join(d.Secrets(), name) }

// AdminConf is the admin kubeconfig.
func (d Dir) AdminConf() string { return d.join("admin.conf") }

// Snapshots is where etcd snapshots land.
func (d Dir) Snapshots() string { return d.join("etcd-snapshots") }

// Logs holds one directory of host logs per run.
func (d Dir) Logs() string { return d.join("logs") }

// Lock is the run lock's file.
func (d Dir) Lock() string { return d.join("lock") }

func (d Dir) join(name string) string { return filepath.Join(string(d), name) }

// DefaultDir is $XDG_STATE_HOME/installer/<cluster>, falling back to ~/.local/state/installer/<cluster>.
func DefaultDir(cluster string, getenv func(string) string, home string) (Dir, error) {
	if cluster == "" {
		return "", errors.New("state dir: the cluster has no name")
	}
	if x := getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return Dir(filepath.Join(x, "installer", cluster)), nil
	}
	if home == "" {
		return "", errors.New("state dir: no home directory; set --state-dir or INSTALLER_STATE_DIR")
	}
	return Dir(filepath.Join(home, ".local", "state", "installer", cluster)), nil
}
