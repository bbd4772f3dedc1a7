package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"installer.dev/installer/lab/internal/flock"
)

// revision is part of every image key; bump it when the way layers or configs are written changes.
const revision = "1"

// refNameAnnotation names an image inside the OCI layout (what match.Name looks for).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// defaultPath is the PATH of every lab image: binaries the manifests run by name live in these dirs.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// spec is one image to build.
type spec struct {
	Name       string
	Entrypoint []string
	Cmd        []string
	Env        []string
	// User is the image's default user (e.g. "1234"); WorkingDir its working directory. Both are
	// hashed only when set, so the keys of images without them stay unchanged.
	User       string
	WorkingDir string
	files      *fileSet
}

// key hashes everything that goes into the image. Source files are identified by path: they live in
// cache directories named by their own content keys (lab/build outputs, the unpacked rootfs).
func (s *spec) key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", revision)
	data, _ := json.Marshal(struct {
		Name, Entrypoint, Cmd, Env any
		Files                      []entry
	}{s.Name, s.Entrypoint, s.Cmd, s.Env, s.files.sorted()})
	h.Write(data)
	if s.User != "" || s.WorkingDir != "" {
		fmt.Fprintf(h, "\nuser %q workdir %q\n", s.User, s.WorkingDir)
	}
	return hex.EncodeToString(h.Sum(nil))[:20]
}

// Image is a built image in the lab's OCI layout.
type Image struct {
	Name   string  // full reference, e.g. registry.k8s.io/pause:3.10.1
	Digest v1.Hash // manifest digest in the layout
}

// store is the OCI layout every lab image is written to, with one stamp per built image key.
type store struct {
	dir string
	log io.Writer
}

func (st *store) layoutDir() string { return filepath.Join(st.dir, "oci") }

// ensure builds the image unless an image with the same key is already in the layout.
func (st *store) ensure(ctx context.Context, s *spec) (Image, error) {
	stamp := filepath.Join(st.dir, "built", s.key()+".json")
	if img, err := st.stamped(stamp); err == nil {
		return img, nil
	}
	lock, err := flock.Acquire(ctx, filepath.Join(st.dir, "images.lock"))
	if err != nil {
		return Image{}, err
	}
	defer lock.Unlock()
	if img, err := st.stamped(stamp); err == nil {
		return img, nil
	}
	start := time.Now()
	img, err := st.build(s)
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	data, _ := json.Marshal(img)
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err != nil {
		return Image{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	if err := os.WriteFile(stamp, data, 0o644); err != nil {
		return Image{}, fmt.Errorf("image %s: %w", s.Name, err)
	}
	fmt.Fprintf(st.log, "image: %s built in %s\n", s.Name, time.Since(start).Round(time.Millisecond))
	return img, nil
}

// stamped returns the image a stamp records if the layout still holds it under that name. Stamps
// are keyed by recipe but the layout by name: building another recipe under the same name
// replaces the image, and the older recipe's stamp must then not be trusted.
func (st *store) stamped(stamp string) (Image, error) {
	img, err := readStamp(stamp)
	if err != nil {
		return Image{}, err
	}
	p, err := layout.FromPath(st.layoutDir())
	if err != nil {
		return Image{}, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return Image{}, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return Image{}, err
	}
	for _, d := range m.Manifests {
		if d.Annotations[refNameAnnotation] == img.Name && d.Digest == img.Digest {
			return img, nil
		}
	}
	return Image{}, fmt.Errorf("image %s %s is no longer in the layout", img.Name, img.Digest)
}

func readStamp(p string) (Image, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return Image{}, err
	}
	var img Image
	if err := json.Unmarshal(data, &img); err != nil {
		return Image{}, err
	}
	if img.Name == "" || img.Digest.Hex == "" {
		return Image{}, errors.New("incomplete stamp")
	}
	return img, nil
}

func (st *store) build(s *spec) (Image, error) {
	tmpDir := filepath.Join(st.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return Image{}, err
	}
	layerPath := filepath.Join(tmpDir, s.key()+".tar.gz")
	defer os.Remove(layerPath)
	if _, err := s.files.writeLayer(layerPath); err != nil {
		return Image{}, err
	}
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return Image{}, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return Image{}, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return Image{}, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint, cfg.Config.Cmd = s.Entrypoint, s.Cmd
	cfg.Config.Env = append([]string{"PATH=" + defaultPath}, s.Env...)
	cfg.Config.User, cfg.Config.WorkingDir = s.User, s.WorkingDir
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return Image{}, err
	}
	p, err := layout.FromPath(st.layoutDir())
	if err != nil {
		if p, err = layout.Write(st.layoutDir(), empty.Index); err != nil {
			return Image{}, err
		}
	}
	if err := p.ReplaceImage(img, match.Name(s.Name), layout.WithAnnotations(map[string]string{refNameAnnotation: s.Name})); err != nil {
		return Image{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return Image{}, err
	}
	return Image{Name: s.Name, Digest: d}, nil
}

// check verifies that every binary path exists in the image as a file (or a link) and every tool
// is on PATH: the promise the image table makes to the manifests.
func (s *spec) check(binaries, tools []string) error {
	var missing []string
	has := func(p string) bool { _, ok := s.files.entries[p]; return ok }
	for _, b := range binaries {
		if !has(b) {
			missing = append(missing, b)
		}
	}
	for _, t := range tools {
		found := false
		for _, d := range strings.Split(defaultPath, ":") {
			if has(path.Join(d, t)) || has(path.Join("/usr", d, t)) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, t+" (on PATH)")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("image %s lacks %s", s.Name, strings.Join(missing, ", "))
	}
	return nil
}
