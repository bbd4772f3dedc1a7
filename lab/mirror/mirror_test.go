package mirror

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"installer.dev/installer/lab/images"
	"installer.dev/installer/pkg/install"
)

func TestRepoPath(t *testing.T) {
	for in, want := range map[string]string{
		"registry.k8s.io/pause:3.10.1":            "pause 3.10.1",
		"registry.k8s.io/coredns/coredns:v1.12.1": "coredns/coredns v1.12.1",
		"docker.io/library/busybox:lab":           "library/busybox lab",
		"localhost:5000/x/y:1":                    "x/y 1",
	} {
		repo, tag, err := repoPath(in)
		if err != nil || repo+" "+tag != want {
			t.Errorf("repoPath(%q) = %q %q %v, want %q", in, repo, tag, err, want)
		}
	}
	if _, _, err := repoPath("busybox"); err == nil {
		t.Error("a name without registry and tag was accepted")
	}
}

func TestWriteFilesChecksumsAndArchives(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "kubeadm")
	if err := os.WriteFile(src, []byte("kubeadm binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "files")
	files := []file{
		{Path: KubernetesBinaryPath("v1.36.5", "kubeadm"), Source: src},
		{Path: CNIPluginsPath("v1.9.1"), Archive: map[string]string{"./bridge": src}, Checksum: sha256sum},
		{Path: CrictlPath("v1.36.0"), Archive: map[string]string{"crictl": src}},
		{Path: RuncPath("v1.5.3"), Source: src, Checksum: sha256sum},
		{Path: ContainerdPath("v2.3.7"), Archive: map[string]string{"bin/containerd": src}, Checksum: sha256sum},
	}
	for i := 0; i < 2; i++ { // the second pass must find everything up to date and change nothing
		if err := writeFiles(root, files); err != nil {
			t.Fatal(err)
		}
	}
	read := func(p string) string {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for _, f := range files {
		sum, err := sha256File(filepath.Join(root, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		want := sum + "\n"
		if f.Checksum == sha256sum {
			want = sum + "  " + filepath.Base(f.Path) + "\n"
		}
		// Where the installer looks for it, in the release's own naming.
		published := install.ChecksumURL(f.Path)
		if got := read(published); got != want {
			t.Errorf("%s = %q, want %q", published, got, want)
		}
		if digest, err := install.PickChecksum([]byte(read(published)), filepath.Base(f.Path)); err != nil || digest != sum {
			t.Errorf("the installer reads %s as %q, %v", published, digest, err)
		}
		// The pin a lab spec gets is the digest of the file served.
		if pin, err := writtenDigest(root, f.Path); err != nil || pin != sum {
			t.Errorf("pin of %s = %q, %v; want %s", f.Path, pin, err, sum)
		}
	}
	if !sameFile(src, filepath.Join(root, files[0].Path)) {
		t.Error("kubeadm is not a hard link to the cached binary")
	}
	a, err := os.Open(filepath.Join(root, CrictlPath("v1.36.0")))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	gz, err := gzip.NewReader(a)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(gz).Next()
	if err != nil || h.Name != "crictl" || h.Mode != 0o755 {
		t.Errorf("crictl archive member = %+v, %v", h, err)
	}
}

// TestPushServesUnderMirrorPath pushes a layout image into a real registry handler in-process and
// pulls it back over HTTP under the path a containerd mirror asks for.
func TestPushServesUnderMirrorPath(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	reg := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(filepath.Join(dir, "blobs"))),
		registry.Logger(log.New(io.Discard, "", 0)))
	c := &Content{LayoutDir: dir, Images: []images.Image{{Name: "registry.k8s.io/pause:3.10.1", Digest: d}}}
	if err := push(context.Background(), reg, c); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/pause:3.10.1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd != d {
		t.Errorf("pulled digest %s, pushed %s", gd, d)
	}
	ls, err := got.Layers()
	if err != nil || len(ls) != 2 {
		t.Fatalf("layers %d, %v", len(ls), err)
	}
	rc, err := ls[1].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if n, err := io.Copy(io.Discard, rc); err != nil || n == 0 {
		t.Errorf("layer blob read %d bytes, %v", n, err)
	}

	c.Images = append(c.Images, images.Image{Name: "docker.io/pause:3.10.1", Digest: d})
	if err := push(context.Background(), reg, c); err == nil || !strings.Contains(err.Error(), "same registry path") {
		t.Errorf("colliding names: err = %v", err)
	}
}
