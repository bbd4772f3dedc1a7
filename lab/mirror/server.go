package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/debrepo"
	"installer.dev/installer/lab/images"
	"installer.dev/installer/lab/internal/flock"
	"installer.dev/installer/pkg/pins"
	"installer.dev/installer/pkg/versions"
)

// Options configure the mirror.
type Options struct {
	// Addr is the listen address, e.g. 172.30.0.1:5000 (the lab bridge) or 127.0.0.1:0 in tests.
	Addr string
	// CacheDir is the lab cache (default ~/.cache/installer-lab).
	CacheDir string
	// Releases are the Kubernetes versions served; default every supported release.
	Releases []string
	// Log receives progress lines; default io.Discard.
	Log io.Writer
}

// Content is what the mirror serves: the file tree of the binary mirror and the built images.
type Content struct {
	FilesDir  string
	LayoutDir string
	Images    []images.Image
	Files     []string // URL paths of the binary mirror (without the .sha256 companions)
	// AptRepositories are the URL paths of the signed apt repositories, one per minor
	// (/core:/stable:/v1.34/deb/); AptKeyFile is the public key that signs them.
	AptRepositories []string
	AptKeyFile      string
	// Pins are the SHA-256 of every file of the binary mirror, by path in upstream's layout: the
	// lab builds these files, so it is their upstream, and a lab spec pins them
	// (install.checksumsFile) as a user pins upstream's.
	Pins pins.Table
}

// Prepare builds (or finds cached) every binary, image and mirror file of the releases. `lab build`
// calls it so that a later Start only pushes manifests and listens.
func Prepare(ctx context.Context, opts Options) (*Content, error) {
	opts = withDefaults(opts)
	cache := opts.CacheDir
	if cache == "" {
		var err error
		if cache, err = build.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	bins := build.New(build.Options{CacheDir: cache, Log: opts.Log})
	imgs := images.New(images.Options{CacheDir: cache, Binaries: bins, Log: opts.Log})
	layoutDir, err := imgs.LayoutDir()
	if err != nil {
		return nil, err
	}
	c := &Content{FilesDir: filepath.Join(cache, "mirror", "files"), LayoutDir: layoutDir, Pins: pins.Table{}}
	seen := map[string]bool{}
	var debs []debrepo.Release
	for _, v := range opts.Releases {
		set, err := bins.Set(ctx, v)
		if err != nil {
			return nil, err
		}
		debs = append(debs, debrepo.Release{Release: set.Release, Binaries: set})
		files := releaseFiles(set)
		// Tests and `lab up` may prepare at once; the files are written through fixed temp names.
		lock, err := flock.Acquire(ctx, filepath.Join(cache, "locks", "mirror-files.lock"))
		if err != nil {
			return nil, err
		}
		err = writeFiles(c.FilesDir, files)
		lock.Unlock()
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if !seen[f.Path] {
				seen[f.Path] = true
				c.Files = append(c.Files, f.Path)
			}
			digest, err := writtenDigest(c.FilesDir, f.Path)
			if err != nil {
				return nil, err
			}
			c.Pins[strings.TrimPrefix(f.Path, "/")] = digest
		}
		built, err := imgs.Release(ctx, v)
		if err != nil {
			return nil, err
		}
		for _, img := range built {
			if !seen[img.Name] {
				seen[img.Name] = true
				c.Images = append(c.Images, img)
			}
		}
	}
	// The apt repositories live in the same file tree, at pkgs.k8s.io's paths.
	repos, key, err := debrepo.Build(ctx, debrepo.Options{CacheDir: cache, Root: c.FilesDir, Log: opts.Log}, debs)
	if err != nil {
		return nil, err
	}
	for _, r := range repos {
		c.AptRepositories = append(c.AptRepositories, debrepo.RepositoryPath(r.Minor))
	}
	c.AptKeyFile = key.PublicFile
	return c, nil
}

func withDefaults(opts Options) Options {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if len(opts.Releases) == 0 {
		for _, r := range versions.Releases() {
			opts.Releases = append(opts.Releases, r.Kubernetes)
		}
	}
	return opts
}

// Server is a running mirror.
type Server struct {
	// Addr is the address it listens on (with the real port when Options.Addr had port 0).
	Addr    string
	Content *Content
	srv     *http.Server
	done    chan error
}

// URL is the mirror's base URL, http://<addr>.
func (s *Server) URL() string { return "http://" + s.Addr }

// Start prepares the content, pushes every image into the registry and then listens: once Start
// returns, every image and file is there.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts = withDefaults(opts)
	if opts.Addr == "" {
		return nil, errors.New("mirror: Options.Addr is required")
	}
	c, err := Prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	// Blobs are served straight from the image layout's blob directory, so a restart copies nothing;
	// manifests live in memory and are pushed again below (milliseconds each).
	reg := registry.New(
		registry.WithBlobHandler(registry.NewDiskBlobHandler(filepath.Join(c.LayoutDir, "blobs"))),
		registry.Logger(log.New(io.Discard, "", 0)),
	)
	start := time.Now()
	if err := push(ctx, reg, c); err != nil {
		return nil, err
	}
	fmt.Fprintf(opts.Log, "mirror: %d images pushed in %s\n", len(c.Images), time.Since(start).Round(time.Millisecond))

	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.Handle("/", http.FileServer(http.Dir(c.FilesDir)))
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("mirror: listen %s: %w", opts.Addr, err)
	}
	s := &Server{Addr: ln.Addr().String(), Content: c, done: make(chan error, 1),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}}
	go func() { s.done <- s.srv.Serve(ln) }()
	fmt.Fprintf(opts.Log, "mirror: serving %d files, %d images and apt repositories %v on %s\n", len(c.Files), len(c.Images), c.AptRepositories, s.Addr)
	return s, nil
}

// Wait blocks until the server stops or ctx ends (then it shuts the server down).
func (s *Server) Wait(ctx context.Context) error {
	select {
	case err := <-s.done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		return s.Close()
	}
}

// Close stops the server, letting requests in flight finish for a few seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("mirror: shutdown: %w", err)
	}
	return nil
}

// push writes every image into the registry handler in-process (no listener yet).
func push(ctx context.Context, reg http.Handler, c *Content) error {
	p, err := layout.FromPath(c.LayoutDir)
	if err != nil {
		return fmt.Errorf("mirror: image layout: %w", err)
	}
	owner := map[string]string{}
	for _, img := range c.Images {
		repo, tag, err := repoPath(img.Name)
		if err != nil {
			return err
		}
		// Mirrors drop the registry host: two registries' images with one path would collide.
		if other, ok := owner[repo+":"+tag]; ok && other != img.Name {
			return fmt.Errorf("mirror: %s and %s map to the same registry path %s:%s", other, img.Name, repo, tag)
		}
		owner[repo+":"+tag] = img.Name
		ref, err := name.ParseReference("lab.invalid/"+repo+":"+tag, name.Insecure)
		if err != nil {
			return fmt.Errorf("mirror: %s: %w", img.Name, err)
		}
		i, err := p.Image(img.Digest)
		if err != nil {
			return fmt.Errorf("mirror: %s: %w", img.Name, err)
		}
		if err := remote.Write(ref, i, remote.WithContext(ctx), remote.WithTransport(handlerTransport{reg})); err != nil {
			return fmt.Errorf("mirror: push %s: %w", img.Name, err)
		}
	}
	return nil
}

// handlerTransport sends requests straight to an http.Handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// WritePIDFile records the current process for `lab down` (which stops the mirror by PID).
func WritePIDFile(path string) error {
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("mirror: pid file: %w", err)
	}
	return nil
}
