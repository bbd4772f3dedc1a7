package aptsources

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "sources.list"), []byte(
		"# comment\ndeb [signed-by=/k.gpg arch=amd64] http://mirror.test/debian bookworm main contrib\ndeb-src http://x/debian bookworm main\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sources.list.d", "debian.sources"), []byte(`Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://deb.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.test/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://deb.test/debian
Suites: bookworm
Components: main
`), 0o644))
	got, err := Read(dir)
	must(t, err)
	want := []Source{
		{URI: "http://mirror.test/debian", Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}},
		{URI: "http://deb.test/debian", Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main"}},
		{URI: "http://deb.test/debian-security", Suites: []string{"bookworm-security"}, Components: []string{"main"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Read:\n got %#v\nwant %#v", got, want)
	}
	if m, err := DebianMirror(got); err != nil || m != "http://mirror.test/debian" {
		t.Errorf("DebianMirror = %q, %v", m, err)
	}
	if m, err := SecurityMirror(got); err != nil || m != "http://deb.test/debian-security" {
		t.Errorf("SecurityMirror = %q, %v", m, err)
	}
}

func TestReadEmpty(t *testing.T) {
	if _, err := Read(t.TempDir()); err == nil {
		t.Fatal("Read of an empty apt dir succeeded")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
