package build

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSetKconfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".config")
	in := "CONFIG_A=y\n# CONFIG_STATIC is not set\nCONFIG_EXTRA_CFLAGS=\"\"\n"
	if err := os.WriteFile(p, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := setKconfig(p, map[string]string{"CONFIG_STATIC": "y", "CONFIG_A": "n", "CONFIG_NEW": "y"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want := "CONFIG_A=n\nCONFIG_STATIC=y\nCONFIG_EXTRA_CFLAGS=\"\"\nCONFIG_NEW=y\n"
	if string(got) != want {
		t.Errorf(".config =\n%s\nwant\n%s", got, want)
	}
}

// A mirror that serves other bytes than the pinned ones is refused, and nothing is left behind.
func TestFetchPinnedRefusesOtherBytes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not the tarball"))
	}))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "src.tar.bz2")
	err := fetchPinned(context.Background(), srv.URL+"/src.tar.bz2", busyboxSource.SHA256, dest)
	if err == nil || !strings.Contains(err.Error(), "pinned "+busyboxSource.SHA256) {
		t.Fatalf("err = %v, want a checksum refusal", err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("%s left behind after the refusal (stat: %v)", dest, err)
	}
	// With the served bytes' own SHA-256 pinned, the download is kept.
	const sum = "22ef63b24d68f7b83395814f738f168eaa55129cdaf62183c7e07d14748881e8"
	if err := fetchPinned(context.Background(), srv.URL+"/src.tar.bz2", sum, dest); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); string(got) != "not the tarball" {
		t.Errorf("kept %q", got)
	}
}
