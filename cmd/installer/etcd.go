package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/phases"
)

func (a *app) newEtcdCommand() *cobra.Command {
	etcd := &cobra.Command{
		Use:   "etcd",
		Short: "Snapshots of the cluster's etcd",
		Args:  cobra.NoArgs,
	}
	var keep int
	snapshot := &cobra.Command{
		Use:   "snapshot",
		Short: "Take a verified etcd snapshot into the state directory",
		Long: `Takes a snapshot of etcd with etcdctl inside the first control plane's etcd pod, verifies it with
etcdutl there, streams it into <state>/etcd-snapshots/etcd-backup-<host>-<time>.db (0600) with its
SHA-256 beside it (.sha256), checks the copy against the host's digest and removes the host's file.
Keeps the newest --keep snapshots taken this way; the snapshots an upgrade takes are never removed.`,
		Example: `  installer etcd snapshot -f cluster.yaml
  installer etcd snapshot -f cluster.yaml --keep 30`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.etcdSnapshot(cmd.Context(), keep)
		},
	}
	snapshot.Flags().IntVar(&keep, "keep", 10, "how many snapshots taken by this command to keep (0: all)")
	list := &cobra.Command{
		Use:   "snapshots",
		Short: "List the etcd snapshots in the state directory and check each against its SHA-256",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.etcdSnapshots()
		},
	}
	etcd.AddCommand(snapshot, list)
	return etcd
}

func (a *app) etcdSnapshot(ctx context.Context, keep int) error {
	if keep < 0 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--keep %d: must not be negative", keep))
	}
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	cps := ls.Cluster.Spec.ControlPlanes()
	if len(cps) == 0 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("the spec has no control plane"))
	}
	s, err := a.startSession(ctx, ls, "etcd-snapshot", []string{cps[0].Name}, nil, false, false)
	if err != nil {
		return err
	}
	defer s.Close()
	var saved string
	err = a.execute(ctx, s, []phases.Phase{phases.Connect{}, phases.GatherFacts{}, phases.ClusterIdentity{Policy: phases.PKIIfPresent},
		phases.EtcdBackup{Keep: keep, Saved: &saved}})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.streams.Out, saved)
	return nil
}

// etcdSnapshots lists the state directory's snapshots; a snapshot whose content does not match its
// .sha256 (or has none) is reported, and the command then exits 1.
func (a *app) etcdSnapshots() error {
	ls, err := a.loadSpec()
	if err != nil {
		return err
	}
	list, err := phases.ListSnapshots(ls.StateDir.Snapshots())
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.streams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TAKEN\tKIND\tSIZE\tSHA-256\tFILE")
	bad := 0
	for _, s := range list {
		kind := "upgrade"
		if s.Backup {
			kind = "backup"
		}
		check := verifySnapshot(s.Path)
		if check != "ok" {
			bad++
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", s.Taken.Format(time.RFC3339), kind, s.Size, check, s.Path)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if bad > 0 {
		return exitcode.New(exitcode.Failure, fmt.Errorf("%d of %d snapshots do not match their SHA-256 or have none", bad, len(list)))
	}
	return nil
}

// verifySnapshot hashes a snapshot and compares it with its .sha256 file: "ok", "MISMATCH" or "no
// checksum file".
func verifySnapshot(path string) string {
	line, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return "no checksum file"
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
	f, err := os.Open(path)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable: " + err.Error()
	}
	if hex.EncodeToString(h.Sum(nil)) != want {
		return "MISMATCH (" + filepath.Base(path) + ".sha256)"
	}
	return "ok"
}
