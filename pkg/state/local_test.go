package state

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"installer.dev/installer/pkg/pki"
)

// TestLocal: an empty state directory gets a PKI and secrets in memory only; Save writes them (keys
// and secrets 0600); a second load reads them back and has nothing pending.
func TestLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := LoadLocal(Dir(dir), false)
	if err != nil || l.PKI != nil || l.PKIGenerated {
		t.Fatalf("without generation: %+v, %v", l, err)
	}
	l, err = LoadLocal(Dir(dir), true)
	if err != nil || l.PKI == nil || !l.PKIGenerated {
		t.Fatalf("with generation: %+v, %v", l, err)
	}
	v, err := l.Secret("vrrp-password", func() (string, error) { return "s3cret", nil })
	if err != nil || v != "s3cret" {
		t.Fatalf("secret %q %v", v, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("loading wrote the state directory (%v)", err)
	}
	want := []string{filepath.Join(dir, "pki") + "/", filepath.Join(dir, "secrets", "vrrp-password")}
	if got := l.Pending(); !slices.Equal(got, want) {
		t.Errorf("pending %v, want %v", got, want)
	}
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pki/ca.key", "pki/etcd/ca.key", "pki/sa.key", "secrets/vrrp-password"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st, err)
		}
	}
	again, err := LoadLocal(Dir(dir), true)
	if err != nil || again.PKIGenerated || again.PKI.DiscoveryHash() != l.PKI.DiscoveryHash() {
		t.Fatalf("reload: %+v %v", again, err)
	}
	calls := 0
	if v, err := again.Secret("vrrp-password", func() (string, error) { calls++; return "new", nil }); err != nil || v != "s3cret" || calls != 0 {
		t.Errorf("reloaded secret %q %v (generated %d times)", v, err, calls)
	}
	if p := again.Pending(); len(p) != 0 {
		t.Errorf("pending after reload: %v", p)
	}
}

// TestLocalNeverReplaces: a PKI or secret another run saved in between is not overwritten.
func TestLocalNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadLocal(Dir(dir), true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadLocal(Dir(dir), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Save(); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(); err == nil {
		t.Fatal("a second PKI was saved over the first")
	}
	loaded, err := pki.Load(filepath.Join(dir, "pki"))
	if err != nil || loaded.DiscoveryHash() != a.PKI.DiscoveryHash() {
		t.Errorf("the state directory's PKI is not the first one saved: %v", err)
	}
}
