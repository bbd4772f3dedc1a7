package images

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/rootfs"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/versions"
)

// Lab-only images: not in the product's table because no spec renders them by default.
const (
	// LabnetImage holds the static labnet test tool (serve, get URL, lookup NAME) as /labnet.
	LabnetImage = "docker.io/library/labnet:1"
	// BusyboxImage is Debian's static busybox with its applets on PATH.
	BusyboxImage = "docker.io/library/busybox:lab"
)

// CCMImage is the lab cloud-controller-manager's image for a Kubernetes release (run it with
// --cloud-provider=lab; the binary is /usr/local/bin/lab-cloud-controller-manager, the entrypoint).
func CCMImage(kubernetesVersion string) string {
	return "docker.io/lab/cloud-controller-manager:" + kubernetesVersion
}

// RootfsPackages are the Debian packages the image userland is copied from, beyond lab/rootfs's
// base set (which already has iptables, curl and conntrack).
func RootfsPackages() []string {
	return []string{"keepalived", "haproxy", "busybox-static", "nftables"}
}

// NotBuilt lists the table's images the lab cannot build, with the reason (kube-vip's module is not
// on the Go module proxy). The lab registry does not serve them.
func NotBuilt(r versions.Release) map[string]string {
	out := map[string]string{}
	for _, i := range manifests.DefaultImages(r) {
		if i.Component == "kube-vip" {
			out[i.Name] = "kube-vip is not on the Go module proxy"
		}
	}
	return out
}

// Options configure a Builder.
type Options struct {
	// CacheDir is the lab cache (default ~/.cache/installer-lab); images go to CacheDir/images.
	CacheDir string
	// Binaries builds the binaries the images hold.
	Binaries *build.Builder
	// Log receives progress lines; default io.Discard.
	Log io.Writer
}

// Builder builds the lab's images into the OCI layout in the cache.
type Builder struct {
	opts Options
}

// New returns a Builder; it does no I/O.
func New(opts Options) *Builder {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	return &Builder{opts: opts}
}

func (b *Builder) cacheDir() (string, error) {
	if b.opts.CacheDir != "" {
		return filepath.Abs(b.opts.CacheDir)
	}
	return build.DefaultCacheDir()
}

// LayoutDir is the OCI image layout holding every built image (its blobs/ is what the lab registry
// serves blobs from).
func (b *Builder) LayoutDir() (string, error) {
	c, err := b.cacheDir()
	if err != nil {
		return "", err
	}
	return (&store{dir: filepath.Join(c, "images")}).layoutDir(), nil
}

// Release builds (or finds) every image the lab serves for a Kubernetes release: each buildable
// entry of manifests.DefaultImages under exactly its name, plus the lab CCM, labnet and busybox.
func (b *Builder) Release(ctx context.Context, kubernetesVersion string) ([]Image, error) {
	r, ok := versions.Lookup(kubernetesVersion)
	if !ok {
		return nil, fmt.Errorf("kubernetes %s is not supported (supported: %s)", kubernetesVersion, versions.SupportedList())
	}
	c, err := b.cacheDir()
	if err != nil {
		return nil, err
	}
	if b.opts.Binaries == nil {
		return nil, fmt.Errorf("images: Options.Binaries is required")
	}
	set, err := b.opts.Binaries.Set(ctx, r.Kubernetes)
	if err != nil {
		return nil, err
	}
	tb, err := rootfs.Ensure(ctx, c, RootfsPackages()...)
	if err != nil {
		return nil, err
	}
	t, err := unpack(ctx, tb.Path)
	if err != nil {
		return nil, err
	}
	specs, err := specsFor(r, set, t)
	if err != nil {
		return nil, err
	}
	st := &store{dir: filepath.Join(c, "images"), log: b.opts.Log}
	var out []Image
	for _, s := range specs {
		img, err := st.ensure(ctx, s)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

func specsFor(r versions.Release, set build.Set, t *tree) ([]*spec, error) {
	var specs []*spec
	notBuilt := NotBuilt(r)
	for _, img := range manifests.DefaultImages(r) {
		if _, skip := notBuilt[img.Name]; skip {
			continue
		}
		s, err := recipe(img, set, t)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		if err := s.check(img.Binaries, img.Tools); err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}

	ccm := &spec{Name: CCMImage(r.Kubernetes), files: newFileSet(),
		Entrypoint: []string{"/usr/local/bin/lab-cloud-controller-manager"}}
	ccm.files.file("/usr/local/bin/lab-cloud-controller-manager", set.Path("lab-cloud-controller-manager"), 0o755)
	ccm.files.dir("/tmp", 0o1777)

	labnet := &spec{Name: LabnetImage, files: newFileSet(), Entrypoint: []string{"/labnet"}}
	labnet.files.file("/labnet", set.Path("labnet"), 0o755)
	etcUsers(labnet.files)

	bb := &spec{Name: BusyboxImage, files: newFileSet(), Cmd: []string{"sh"}}
	usrMerge(bb.files)
	if err := t.addBusybox(bb.files); err != nil {
		return nil, err
	}
	etcUsers(bb.files)
	bb.files.dir("/tmp", 0o1777)
	return append(specs, ccm, labnet, bb), nil
}

// recipe lays out one table image from the lab's binaries and the Debian userland.
func recipe(img manifests.Image, set build.Set, t *tree) (*spec, error) {
	s := &spec{Name: img.Name, Entrypoint: img.Entrypoint, files: newFileSet()}
	bin := func(p, name string) error {
		src := set.Path(name)
		if src == "" {
			return fmt.Errorf("no lab binary %q", name)
		}
		s.files.file(p, src, 0o755)
		return nil
	}
	switch img.Component {
	case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy":
		if err := bin(img.Binaries[0], img.Component); err != nil {
			return nil, err
		}
		s.Entrypoint = []string{img.Binaries[0]}
		if img.Component == "kube-proxy" {
			usrMerge(s.files)
			if err := t.addIPTables(s.files); err != nil {
				return nil, err
			}
		}
	case "etcd":
		for _, p := range img.Binaries {
			if err := bin(p, filepath.Base(p)); err != nil {
				return nil, err
			}
		}
		s.files.dir("/var/lib/etcd", 0o700)
		s.files.dir("/tmp", 0o1777)
	case "coredns", "pause":
		if err := bin(img.Binaries[0], img.Component); err != nil {
			return nil, err
		}
	case "flannel":
		if err := bin(img.Binaries[0], "flanneld"); err != nil {
			return nil, err
		}
		usrMerge(s.files)
		if err := t.addIPTables(s.files); err != nil {
			return nil, err
		}
		if err := t.addBusybox(s.files); err != nil {
			return nil, err
		}
	case "flannel-cni-plugin":
		if err := bin(img.Binaries[0], "flannel"); err != nil {
			return nil, err
		}
		// The lab also carries the reference plugins flannel delegates to, for hosts without them.
		for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
			if err := bin("/cni/"+p, p); err != nil {
				return nil, err
			}
		}
		usrMerge(s.files)
		if err := t.addBusybox(s.files); err != nil {
			return nil, err
		}
		s.files.dir("/tmp", 0o1777)
	case "keepalived":
		usrMerge(s.files)
		seen := map[string]bool{}
		for _, p := range []string{img.Binaries[0], "/usr/bin/curl"} {
			if err := t.addELF(s.files, p, seen); err != nil {
				return nil, err
			}
		}
		if err := t.addBusybox(s.files); err != nil {
			return nil, err
		}
		etcUsers(s.files, "keepalived_script")
		s.files.dir("/run", 0o755)
		s.files.dir("/tmp", 0o1777)
		s.Entrypoint = []string{img.Binaries[0]}
	case "haproxy":
		usrMerge(s.files)
		// Debian installs /usr/sbin/haproxy; the upstream image (and so the table) has it in /usr/local/sbin.
		if err := t.addELF(s.files, "/usr/sbin/haproxy", map[string]bool{}); err != nil {
			return nil, err
		}
		s.files.file(img.Binaries[0], filepath.Join(t.root, "usr/sbin/haproxy"), 0o755)
		etcUsers(s.files, "haproxy")
		s.files.dir("/run/haproxy", 0o755)
		s.files.dir("/var/lib/haproxy", 0o755)
		s.files.dir("/tmp", 0o1777)
		s.Entrypoint = []string{img.Binaries[0]}
	default:
		return nil, fmt.Errorf("the lab has no recipe for component %q", img.Component)
	}
	return s, nil
}
