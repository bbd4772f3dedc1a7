package main

import (
	"bytes"
	"os"
	"testing"

	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/state"
)

// TestConfigHashKey: a state directory of an earlier release keeps its stored key; otherwise the
// key is derived from the cluster CA, so a state directory rebuilt by state recover (the same PKI,
// no secrets/) renders the same config-hash annotations; without a PKI there is no key.
func TestConfigHashKey(t *testing.T) {
	b, err := pki.Generate(pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := state.Dir(t.TempDir())
	if err := b.Save(dir.PKI()); err != nil {
		t.Fatal(err)
	}
	load := func(d state.Dir) []byte {
		t.Helper()
		l, err := state.LoadLocal(d, false)
		if err != nil {
			t.Fatal(err)
		}
		k, err := configHashKey(l)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	derived := load(dir)
	if len(derived) != 32 || !bytes.Equal(derived, b.DeriveKey(configHashKeySecret)) {
		t.Fatalf("derived key %x", derived)
	}
	recovered := state.Dir(t.TempDir())
	if err := b.Save(recovered.PKI()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(load(recovered), derived) {
		t.Error("a state directory with the same PKI derives another key")
	}
	if err := os.MkdirAll(dir.Secrets(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir.Secret(configHashKeySecret), []byte("0123abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k := load(dir); string(k) != "0123abcd" {
		t.Errorf("stored key not used: %q", k)
	}
	if k := load(state.Dir(t.TempDir())); k != nil {
		t.Errorf("a key without a PKI: %x", k)
	}
}
