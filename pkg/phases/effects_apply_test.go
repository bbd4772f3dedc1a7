package phases

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteLocalIsPrivate: the admin kubeconfig lands 0600 even where a wider-open file of the old
// temporary name exists, nothing is left beside it, and the same content is not written again.
func TestWriteLocalIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.conf")
	if err := os.WriteFile(path+".tmp", []byte("planted"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := newJournal()
	e := applyEffects{j: j, log: slog.New(slog.DiscardHandler)}
	for range 2 {
		if err := e.WriteLocal(path, []byte("kubeconfig")); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.conf: %v, mode %v; want 0600", err, st.Mode())
	}
	if n := j.changesOf(""); n != 1 {
		t.Errorf("%d changes for two writes of the same content, want 1", n)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 { // admin.conf and the planted file, untouched
		t.Errorf("state directory holds %v, want admin.conf and admin.conf.tmp only", entries)
	}
	if b, _ := os.ReadFile(path + ".tmp"); string(b) != "planted" {
		t.Errorf("the unrelated file was changed: %q", b)
	}
}
