package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
		Short: "Snapshots of the cluster's etcd, and restoring one",
		Args:  cobra.NoArgs,
	}
	var keep int
	snapshot := &cobra.Command{
		Use:   "snapshot",
		Short: "Take a verified etcd snapshot into the state directory",
		Long: `Takes a snapshot of etcd with etcdctl inside the etcd pod of the first control plane that answers
and runs etcd (the others are tried in spec order when one cannot), verifies it with
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
	var (
		from    string
		yes     bool
		dryRun  bool
		timeout time.Duration
	)
	restore := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Restore etcd on every control plane from a snapshot: everything written after it is lost",
		Long: `Restores the cluster's etcd from a snapshot, the upstream procedure automated for one or several
control planes with stacked etcd. While the cluster still runs, the snapshot is copied to every
control plane and restored there beside etcd's data (etcdutl from the etcd image; each member with
its own name and peer URL; the revision bumped and marked compacted, so every client lists again).
Then etcd, kube-apiserver, kube-controller-manager and kube-scheduler stop on every control plane
(the API is down from here), each swaps the restored data in, etcd starts everywhere and must be
healthy with every member, then the rest starts; the run ends when every apiserver is ready and
every node Ready. Workers are only waited for. etcd's data from before the restore is kept on each
control plane under /var/lib/installer/etcd-restore/<id>/before.

Everything the cluster stored after the snapshot was taken is lost. A snapshot file FILE.sha256
beside it (as etcd snapshot writes) must match. A restore that stops half-way is finished by running
the command again with the same snapshot; one with another snapshot is refused until then.`,
		Example: `  installer etcd snapshots -f cluster.yaml
  installer etcd restore -f cluster.yaml --from ~/.local/state/installer/prod/etcd-snapshots/etcd-backup-cp1-20261206T010000.000Z.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.etcdRestore(cmd.Context(), from, yes, dryRun, timeout)
		},
	}
	restore.Flags().StringVar(&from, "from", "", "the snapshot file (required)")
	restore.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	restore.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	restore.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "bound on each wait: containers stopping, etcd healthy, apiservers ready, nodes Ready")
	etcd.AddCommand(snapshot, list, restore)
	return etcd
}

// readSnapshot reads a snapshot file and its SHA-256, checked against FILE.sha256 when there is one.
func readSnapshot(path string) ([]byte, string, bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", false, exitcode.New(exitcode.InvalidInput, fmt.Errorf("--from: %w", err))
	}
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	want, err := os.ReadFile(path + ".sha256")
	if errors.Is(err, fs.ErrNotExist) {
		return data, got, false, nil
	}
	if err != nil {
		return nil, "", false, exitcode.New(exitcode.InvalidInput, err)
	}
	if f := strings.Fields(string(want)); len(f) == 0 || f[0] != got {
		return nil, "", false, exitcode.New(exitcode.InvalidInput, fmt.Errorf("--from %s: its SHA-256 is %s, %s.sha256 says %q: the snapshot is damaged or not the one the checksum was taken of; nothing was changed", path, got, path, strings.TrimSpace(string(want))))
	}
	return data, got, true, nil
}

func (a *app) etcdRestore(ctx context.Context, from string, yes, dryRun bool, timeout time.Duration) error {
	if from == "" {
		return exitcode.New(exitcode.InvalidInput, errors.New("--from FILE is required: the snapshot to restore (installer etcd snapshots lists the state directory's)"))
	}
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	snapshot, sum, checked, err := readSnapshot(from)
	if err != nil {
		return err
	}
	if !checked {
		a.log.Warn("the snapshot has no .sha256 beside it: only etcdutl's own integrity check guards it", "file", from)
	}
	if !yes && !dryRun {
		what := fmt.Sprintf("This restores cluster %s's etcd from %s (sha256 %s).\nEverything the cluster stored after that snapshot was taken is lost, and the API is down while the control planes restart.",
			ls.Cluster.Metadata.Name, from, sum[:16])
		if err := a.confirmOnTerminal("etcd restore", what); err != nil {
			return err
		}
	}
	s, err := a.startSession(ctx, ls, runName("etcd-restore", dryRun), nil, nil, dryRun, false)
	if err != nil {
		return err
	}
	defer s.Close()
	var report phases.RestoreReport
	err = a.execute(ctx, s, []phases.Phase{phases.Connect{}, phases.GatherFacts{}, phases.ClusterIdentity{Policy: phases.PKIRequired},
		phases.EtcdRestore{Snapshot: snapshot, SHA256: sum, Timeout: timeout, Report: &report}})
	if dryRun {
		printPlan(a.streams.Out, s.Run.Planned(), a.global.Verbose > 0, err)
		return err
	}
	if err != nil {
		return err
	}
	verb := "restored"
	if report.Resumed {
		verb = "finished the interrupted restore"
	}
	fmt.Fprintf(a.streams.Out, "%s etcd from %s (restore %s) as %s\netcd's data from before it is kept on each control plane in %s/%s/before\n",
		verb, from, report.ID, strings.Join(report.Members, ","), phases.EtcdRestoreDir, report.ID)
	return nil
}

func (a *app) etcdSnapshot(ctx context.Context, keep int) error {
	if keep < 0 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("--keep %d: must not be negative", keep))
	}
	ls, err := a.loadSpecForHosts()
	if err != nil {
		return err
	}
	var cps []string
	for _, h := range ls.Cluster.Spec.ControlPlanes() {
		cps = append(cps, h.Name)
	}
	if len(cps) == 0 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("the spec has no control plane"))
	}
	s, err := a.startSession(ctx, ls, "etcd-snapshot", cps, nil, false, false)
	if err != nil {
		return err
	}
	defer s.Close()
	var (
		saved       string
		unreachable []string
	)
	err = a.execute(ctx, s, []phases.Phase{phases.ConnectReachable{Unreachable: &unreachable}, phases.GatherFacts{}, phases.ClusterIdentity{Policy: phases.PKIIfPresent},
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
