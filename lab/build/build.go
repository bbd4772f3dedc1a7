package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"installer.dev/installer/lab/internal/flock"
	"installer.dev/installer/pkg/versions"
)

// revision is bumped when the builder's logic changes in a way the recipes do not show (how go.mod is
// written, how tools are invoked); it is part of every cache key.
const revision = "1"

// Options configure a Builder. The zero value is usable.
type Options struct {
	// CacheDir holds built binaries and wrapper modules; default ~/.cache/installer-lab.
	CacheDir string
	// RepoDir is the installer repository (for the stand-in sources under lab/standins); default:
	// found by walking up from the working directory.
	RepoDir string
	// Parallel is go build's -p; default 2 (the machines have 2 cores).
	Parallel int
	// Log receives progress lines and the go command's output; default io.Discard.
	Log io.Writer
}

// Builder builds and caches lab components. It is safe for concurrent use by several processes:
// builds are serialised by a file lock, cached results are read without it.
type Builder struct {
	opts Options
}

// New returns a Builder with defaults filled in. It does no I/O.
func New(opts Options) *Builder {
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	return &Builder{opts: opts}
}

// DefaultCacheDir is ~/.cache/installer-lab (XDG_CACHE_HOME respected).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(d, "installer-lab"), nil
}

// CacheDir returns the cache root, resolving the default.
func (b *Builder) CacheDir() (string, error) {
	if b.opts.CacheDir != "" {
		return filepath.Abs(b.opts.CacheDir)
	}
	return DefaultCacheDir()
}

// Set is every binary of one release, by name.
type Set struct {
	Release versions.Release
	Paths   map[string]string
}

// Path returns the path of a binary of the set, or "" when the set has no such binary.
func (s Set) Path(name string) string { return s.Paths[name] }

// Names lists the binaries of a release's set, sorted.
func Names(kubernetesVersion string) ([]string, error) {
	r, ok := versions.Lookup(kubernetesVersion)
	if !ok {
		return nil, fmt.Errorf("kubernetes %s is not supported (supported: %s)", kubernetesVersion, versions.SupportedList())
	}
	var names []string
	for _, u := range unitsFor(r, map[string]string{}) {
		for _, t := range u.Tools {
			names = append(names, t.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Binary returns the path of one binary of the set that belongs to a Kubernetes release, building
// only what it needs (e.g. kubeadm alone) when it is not cached.
func (b *Builder) Binary(ctx context.Context, name, kubernetesVersion string) (string, error) {
	us, err := b.units(kubernetesVersion)
	if err != nil {
		return "", err
	}
	for _, u := range us {
		if _, ok := u.tool(name); ok {
			paths, err := b.ensure(ctx, u, []string{name})
			if err != nil {
				return "", err
			}
			return paths[name], nil
		}
	}
	return "", fmt.Errorf("no binary %q in the lab set of %s", name, kubernetesVersion)
}

// Set builds (or finds cached) every binary of a release.
func (b *Builder) Set(ctx context.Context, kubernetesVersion string) (Set, error) {
	us, err := b.units(kubernetesVersion)
	if err != nil {
		return Set{}, err
	}
	r, _ := versions.Lookup(kubernetesVersion)
	set := Set{Release: r, Paths: map[string]string{}}
	for _, u := range us {
		paths, err := b.ensure(ctx, u, nil)
		if err != nil {
			return Set{}, err
		}
		for n, p := range paths {
			set.Paths[n] = p
		}
	}
	return set, nil
}

func (b *Builder) units(kubernetesVersion string) ([]*unit, error) {
	r, ok := versions.Lookup(kubernetesVersion)
	if !ok {
		return nil, fmt.Errorf("kubernetes %s is not supported (supported: %s)", kubernetesVersion, versions.SupportedList())
	}
	stand, err := b.standins()
	if err != nil {
		return nil, err
	}
	return unitsFor(r, stand), nil
}

// standins reads the stand-in sources; they are part of the cache key, so editing one rebuilds it.
func (b *Builder) standins() (map[string]string, error) {
	repo := b.opts.RepoDir
	if repo == "" {
		var err error
		if repo, err = FindRepo(); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for _, f := range []string{"pause/main.go", "labnet/main.go", "ccm/main.go"} {
		data, err := os.ReadFile(filepath.Join(repo, "lab", "standins", f))
		if err != nil {
			return nil, fmt.Errorf("stand-in source: %w", err)
		}
		out[f] = string(data)
	}
	return out, nil
}

// FindRepo walks up from the working directory to the installer module's root.
func FindRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && len(data) > 0 && isInstallerModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository: no go.mod of installer.dev/installer above the working directory (set Options.RepoDir)")
		}
		dir = parent
	}
}

func isInstallerModule(gomod []byte) bool {
	const want = "module installer.dev/installer\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}

// key is the unit's cache key: its whole recipe, the builder revision and the Go release that builds.
func (u *unit) key() string {
	data, err := json.Marshal(u)
	if err != nil {
		panic(err) // a unit holds only strings, slices and maps of strings
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", revision, runtime.Version())
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ensure returns the paths of the named tools of u (all tools when names is nil), building the
// missing ones under the build lock.
func (b *Builder) ensure(ctx context.Context, u *unit, names []string) (map[string]string, error) {
	cache, err := b.CacheDir()
	if err != nil {
		return nil, err
	}
	if names == nil {
		for _, t := range u.Tools {
			names = append(names, t.Name)
		}
	}
	outDir := filepath.Join(cache, "bin", u.ID+"-"+u.key())
	paths := map[string]string{}
	var missing []string
	for _, n := range names {
		p := filepath.Join(outDir, n)
		paths[n] = p
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return paths, nil
	}
	lock, err := flock.Acquire(ctx, filepath.Join(cache, "locks", "build.lock"))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	// Another process may have built them while we waited.
	var still []string
	for _, n := range missing {
		if _, err := os.Stat(paths[n]); err != nil {
			still = append(still, n)
		}
	}
	if len(still) == 0 {
		return paths, nil
	}
	start := time.Now()
	fmt.Fprintf(b.opts.Log, "build: %s: %v\n", u.ID, still)
	if err := b.buildUnit(ctx, cache, u, outDir, still); err != nil {
		return nil, fmt.Errorf("build %s: %w", u.ID, err)
	}
	fmt.Fprintf(b.opts.Log, "build: %s done in %s\n", u.ID, time.Since(start).Round(time.Second))
	return paths, nil
}
