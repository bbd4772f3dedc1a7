package phases

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// recoverRun runs state recover's phases against sc with the state directory dir, as the command
// does: its own PKI and secrets loaded from dir, hosts in down unreachable.
func recoverRun(t *testing.T, sc *simCluster, dir state.Dir, down ...string) (*Run, RecoverReport, []string, error) {
	t.Helper()
	local, err := state.LoadLocal(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	r := sc.newRun(t, nil)
	r.StateDir, r.PKI, r.Local = dir, local.PKI, local
	connect := r.Connect
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) {
		if slices.Contains(down, h.Name) {
			return nil, &ssh.UnreachableError{Host: h.Name, Address: h.Address, Err: errors.New("no route to host")}
		}
		return connect(ctx, h)
	}
	var (
		rep         RecoverReport
		unreachable []string
	)
	_, err = Execute(context.Background(), r, []Phase{ConnectReachable{Unreachable: &unreachable}, GatherFacts{},
		StateRecover{Secrets: local, Report: &rep}, ClusterIdentity{Policy: PKIRequired}})
	return r, rep, unreachable, err
}

// TestStateRecover rebuilds an HA cluster's state directory from its hosts: the PKI byte for byte
// (so every key derived from it is the same), keepalived's VRRP password and the admin kubeconfig;
// a second run writes nothing, and a cluster whose first control plane is down is recovered from
// the next one.
func TestStateRecover(t *testing.T) {
	sc := runningCluster(t, haCreateSpec(t), "v1.36.5")
	dir := state.Dir(t.TempDir())
	r, rep, unreachable, err := recoverRun(t, sc, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pki.Load(dir.PKI())
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.FileSums(), sc.pki.FileSums()) || !bytes.Equal(got.DeriveKey("k"), sc.pki.DeriveKey("k")) {
		t.Error("the recovered PKI is not the cluster's")
	}
	if b, err := os.ReadFile(dir.Secret(VRRPPasswordSecret)); err != nil || string(b) != sc.in.VRRPPassword+"\n" {
		t.Errorf("vrrp-password %q, %v; want the hosts' %q", b, err, sc.in.VRRPPassword)
	}
	hostConf, _ := sc.Host("cp1").File(constants.AdminConf)
	if b, err := os.ReadFile(dir.AdminConf()); err != nil || !bytes.Equal(b, hostConf.Content) {
		t.Errorf("admin.conf not cp1's: %v", err)
	}
	for _, p := range []string{dir.PKI() + "/ca.key", dir.PKI() + "/etcd/ca.key", dir.PKI() + "/sa.key", dir.Secret(VRRPPasswordSecret), dir.AdminConf()} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", p, fi.Mode(), err)
		}
	}
	if rep.Source != "cp1" || !slices.Equal(rep.Agreeing, []string{"cp2", "cp3", "w1"}) || len(unreachable) != 0 {
		t.Errorf("report %+v, unreachable %v", rep, unreachable)
	}
	if n := totalChanges(r); n != 3 {
		t.Errorf("%d changes, want 3 (pki/, vrrp-password, admin.conf)", n)
	}

	// Again: everything is there and the cluster's; nothing is written.
	r, rep, _, err = recoverRun(t, sc, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := totalChanges(r); n != 0 || len(rep.Kept) != 2 {
		t.Errorf("second run: %d changes, report %+v", n, rep)
	}

	// cp1 down: recovered from cp2, and the command names cp1 as not compared.
	dir2 := state.Dir(t.TempDir())
	_, rep, unreachable, err = recoverRun(t, sc, dir2, "cp1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "cp2" || !slices.Equal(unreachable, []string{"cp1"}) {
		t.Errorf("report %+v, unreachable %v", rep, unreachable)
	}
	if got, err := pki.Load(dir2.PKI()); err != nil || !maps.Equal(got.FileSums(), sc.pki.FileSums()) {
		t.Errorf("PKI from cp2: %v", err)
	}
}

// TestStateRecoverRefuses: hosts that disagree, a state directory holding another cluster's PKI or
// VRRP password, and VRRP passwords that differ between control planes each stop the run with
// nothing written and no secret in the message.
func TestStateRecoverRefuses(t *testing.T) {
	refused := func(t *testing.T, err error, want string) {
		t.Helper()
		if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v (exit %d), want a refusal saying %q", err, exitcode.Of(err), want)
		}
	}
	empty := func(t *testing.T, dir state.Dir) {
		t.Helper()
		for _, p := range []string{dir.PKI(), dir.AdminConf(), dir.Secrets()} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s was written", p)
			}
		}
	}

	t.Run("control planes disagree", func(t *testing.T) {
		sc := runningCluster(t, haCreateSpec(t), "v1.36.5")
		sc.Host("cp3").SetFile(pkiPath("sa.key"), otherClusterPKI(t).SAKeyPEM, 0o600, "root:root")
		dir := state.Dir(t.TempDir())
		_, _, _, err := recoverRun(t, sc, dir)
		refused(t, err, "cp3 (sa.key differs)")
		empty(t, dir)
	})
	t.Run("a worker of another cluster", func(t *testing.T) {
		sc := runningCluster(t, haCreateSpec(t), "v1.36.5")
		sc.Host("w1").SetFile(pkiPath("ca.crt"), otherClusterPKI(t).Cluster.CertPEM, 0o644, "root:root")
		dir := state.Dir(t.TempDir())
		_, _, _, err := recoverRun(t, sc, dir)
		refused(t, err, "w1 (ca.crt differs)")
		empty(t, dir)
	})
	t.Run("state directory of another cluster", func(t *testing.T) {
		sc := runningCluster(t, haCreateSpec(t), "v1.36.5")
		dir := state.Dir(t.TempDir())
		if err := otherClusterPKI(t).Save(dir.PKI()); err != nil {
			t.Fatal(err)
		}
		before, _ := pki.Load(dir.PKI())
		_, _, _, err := recoverRun(t, sc, dir)
		refused(t, err, "already holds a PKI, and it is not the cluster's")
		after, _ := pki.Load(dir.PKI())
		if !maps.Equal(before.FileSums(), after.FileSums()) {
			t.Error("the state directory's PKI was replaced")
		}
		if _, err := os.Stat(dir.AdminConf()); err == nil {
			t.Error("admin.conf written")
		}
	})
	t.Run("a stored VRRP password differs", func(t *testing.T) {
		sc := runningCluster(t, haCreateSpec(t), "v1.36.5")
		dir := state.Dir(t.TempDir())
		if err := os.MkdirAll(dir.Secrets(), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir.Secret(VRRPPasswordSecret), []byte("Other123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := recoverRun(t, sc, dir)
		refused(t, err, "differs from the hosts' value (keepalived.conf on cp1, cp2, cp3)")
		if strings.Contains(err.Error(), sc.in.VRRPPassword) || strings.Contains(err.Error(), "Other123") {
			t.Errorf("a password in the error: %v", err)
		}
		if _, err := os.Stat(dir.PKI()); err == nil {
			t.Error("pki/ written before the refusal")
		}
		if b, _ := os.ReadFile(dir.Secret(VRRPPasswordSecret)); string(b) != "Other123\n" {
			t.Errorf("stored password replaced: %q", b)
		}
	})
	t.Run("VRRP passwords differ", func(t *testing.T) {
		sc := runningCluster(t, haCreateSpec(t), "v1.36.5")
		conf, _ := sc.Host("cp2").File(manifests.KeepalivedConfigPath)
		changed := bytes.Replace(conf.Content, []byte("auth_pass "+sc.in.VRRPPassword), []byte("auth_pass Zz9Zz9Zz"), 1)
		if bytes.Equal(changed, conf.Content) {
			t.Fatal("no auth_pass line in keepalived.conf")
		}
		sc.Host("cp2").SetFile(manifests.KeepalivedConfigPath, changed, 0o600, "root:root")
		dir := state.Dir(t.TempDir())
		_, _, _, err := recoverRun(t, sc, dir)
		refused(t, err, "2 different VRRP passwords (hosts sharing one: cp1, cp3; cp2)")
		if strings.Contains(err.Error(), "Zz9Zz9Zz") || strings.Contains(err.Error(), sc.in.VRRPPassword) {
			t.Errorf("a password in the error: %v", err)
		}
		if _, err := os.Stat(dir.Secret(VRRPPasswordSecret)); err == nil {
			t.Error("a VRRP password was written")
		}
	})
	t.Run("no control plane holds a cluster", func(t *testing.T) {
		sc := newSimCluster(t, haCreateSpec(t))
		dir := state.Dir(t.TempDir())
		_, _, _, err := recoverRun(t, sc, dir)
		refused(t, err, "no reachable control plane holds a cluster")
		empty(t, dir)
	})
}

func pkiPath(name string) string { return filepath.Join(constants.PKIDir, name) }
