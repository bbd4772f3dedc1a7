package images

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func TestLayerIsReproducibleWithModesAndParents(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newFileSet()
	s.file("/usr/local/bin/tool", bin, 0o755)
	s.symlink("/bin", "usr/bin")
	s.content("/etc/nsswitch.conf", "hosts: files\n", 0o644)
	s.dir("/tmp", 0o1777)

	a, b := filepath.Join(dir, "a.tar.gz"), filepath.Join(dir, "b.tar.gz")
	d1, err := s.writeLayer(a)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := s.writeLayer(b)
	if err != nil {
		t.Fatal(err)
	}
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if d1 != d2 || string(ba) != string(bb) {
		t.Errorf("two writes differ: %s vs %s", d1, d2)
	}

	f, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]*tar.Header{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name], order = h, append(order, h.Name)
	}
	want := map[string]int64{"usr/": 0o755, "usr/local/": 0o755, "usr/local/bin/": 0o755, "usr/local/bin/tool": 0o755,
		"etc/nsswitch.conf": 0o644, "tmp/": 0o1777, "etc/": 0o755}
	for n, mode := range want {
		h, ok := got[n]
		if !ok {
			t.Errorf("layer lacks %s (has %v)", n, order)
			continue
		}
		if h.Mode != mode || h.Uid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("%s: mode %o uid %d time %v", n, h.Mode, h.Uid, h.ModTime)
		}
	}
	if h := got["bin"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin symlink = %+v", h)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] > order[i] {
			t.Errorf("entries not sorted: %v", order)
		}
	}
}

// TestTreeAddFollowsLinks checks that a path reached through absolute and relative links (Debian's
// alternatives and usr-merge) is copied with every link on the way.
func TestTreeAddFollowsLinks(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc/alternatives"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/sbin/xtables-nft-multi"), []byte("elf"), 0o755))
	must(os.Symlink("usr/sbin", filepath.Join(root, "sbin")))
	must(os.Symlink("/etc/alternatives/iptables", filepath.Join(root, "usr/sbin/iptables")))
	must(os.Symlink("/usr/sbin/iptables-nft", filepath.Join(root, "etc/alternatives/iptables")))
	must(os.Symlink("xtables-nft-multi", filepath.Join(root, "usr/sbin/iptables-nft")))

	tr := &tree{root: root}
	s := newFileSet()
	resolved, err := tr.add(s, "/sbin/iptables")
	if err != nil {
		t.Fatal(err)
	}
	if resolved != "/usr/sbin/xtables-nft-multi" {
		t.Errorf("resolved to %s", resolved)
	}
	wantLinks := map[string]string{
		"/sbin": "usr/sbin", "/usr/sbin/iptables": "/etc/alternatives/iptables",
		"/etc/alternatives/iptables": "/usr/sbin/iptables-nft", "/usr/sbin/iptables-nft": "xtables-nft-multi",
	}
	for p, target := range wantLinks {
		if e, ok := s.entries[p]; !ok || e.Link != target {
			t.Errorf("%s: entry %+v, want link to %s", p, e, target)
		}
	}
	if e := s.entries["/usr/sbin/xtables-nft-multi"]; e.Source == "" || e.Mode != 0o755 {
		t.Errorf("binary entry = %+v", e)
	}
	if _, err := tr.add(s, "/usr/sbin/missing"); err == nil {
		t.Error("adding a missing path succeeded")
	}
}

func TestSpecCheckReportsMissingPaths(t *testing.T) {
	s := &spec{Name: "example/img:1", files: newFileSet()}
	s.files.file("/opt/bin/flanneld", "/dev/null", 0o755)
	s.files.symlink("/usr/bin/cp", "busybox")
	if err := s.check([]string{"/opt/bin/flanneld"}, []string{"cp"}); err != nil {
		t.Errorf("complete image rejected: %v", err)
	}
	err := s.check([]string{"/flannel"}, []string{"nft"})
	if err == nil || err.Error() != "image example/img:1 lacks /flannel, nft (on PATH)" {
		t.Errorf("err = %v", err)
	}
}

// Two recipes under one name: switching back to the first must rebuild it, not trust its stamp,
// because the second replaced the image in the layout (the push then found no descriptor).
func TestStoreRebuildsWhenTheNameWasReplaced(t *testing.T) {
	st := &store{dir: t.TempDir(), log: io.Discard}
	recipe := func(content string) *spec {
		s := &spec{Name: "registry.test/e2e/box:1", Cmd: []string{"sh"}, files: newFileSet()}
		s.files.content("/etc/recipe", content, 0o644)
		return s
	}
	ctx := context.Background()
	first, err := st.ensure(ctx, recipe("one\n"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.ensure(ctx, recipe("two\n"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest == second.Digest {
		t.Fatalf("two recipes gave one digest %s", first.Digest)
	}
	again, err := st.ensure(ctx, recipe("one\n"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != first.Digest {
		t.Fatalf("rebuilt first recipe: digest %s, want %s (layers are reproducible)", again.Digest, first.Digest)
	}
	p, err := layout.FromPath(st.layoutDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Image(again.Digest); err != nil {
		t.Fatalf("the stamp's image is not in the layout: %v", err)
	}
	if _, err := st.stamped(filepath.Join(st.dir, "built", recipe("two\n").key()+".json")); err == nil {
		t.Fatal("the replaced recipe's stamp is still trusted")
	}
}
