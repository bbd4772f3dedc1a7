package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/pins"
)

// TestWritesWhatUpstreamPublishes serves every checksum file in upstream's own styles (a bare digest
// beside dl.k8s.io's files, sha256sum lines for containerd, one file for all of runc's) over real
// HTTP, and checks the table written, then -verify on it and on a table with a file missing.
func TestWritesWhatUpstreamPublishes(t *testing.T) {
	digestOf := func(p string) string { s := sha256.Sum256([]byte(p)); return hex.EncodeToString(s[:]) }
	o := options{arches: []string{"amd64", "arm64"}, out: filepath.Join(t.TempDir(), "checksums.txt")}
	var srvURL string
	served := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := served[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	srvURL = srv.URL
	o.binaryMirror, o.artifactMirror = srvURL, srvURL+"/gh"
	want, err := files(o)
	if err != nil {
		t.Fatal(err)
	}
	runc := map[string]string{}
	for _, f := range want {
		sums := strings.TrimPrefix(install.ChecksumURL(f[1]), srvURL)
		name := path.Base(f[0])
		switch {
		case strings.HasPrefix(name, "runc."):
			runc[sums] += digestOf(f[0]) + "  " + name + "\n"
		case strings.HasPrefix(name, "containerd-"):
			served[sums] = digestOf(f[0]) + "  " + name + "\n"
		default:
			served[sums] = digestOf(f[0]) + "\n"
		}
	}
	for p, body := range runc {
		served[p] = body
	}
	if err := run(context.Background(), o, srv.Client()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	table, err := pins.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != len(want) || len(want) < 20 {
		t.Fatalf("%d pins for %d files", len(table), len(want))
	}
	for _, f := range want {
		if table[f[0]] != digestOf(f[0]) {
			t.Errorf("%s: %q", f[0], table[f[0]])
		}
	}
	o.verify = true
	if err := run(context.Background(), o, srv.Client()); err != nil {
		t.Errorf("verify of a complete table: %v", err)
	}
	delete(table, want[0][0])
	if err := os.WriteFile(o.out, table.Format(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), o, srv.Client()); err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), want[0][0]) {
		t.Errorf("verify of a table missing %s: %v", want[0][0], err)
	}

	// A file upstream does not publish a checksum for fails the run and writes nothing.
	o.verify = false
	delete(served, strings.TrimPrefix(install.ChecksumURL(want[1][1]), srvURL))
	before, _ := os.ReadFile(o.out)
	if err := run(context.Background(), o, srv.Client()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing checksum file: %v", err)
	}
	if after, _ := os.ReadFile(o.out); string(after) != string(before) {
		t.Error("a failed run rewrote the table")
	}
}
