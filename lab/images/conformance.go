package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/rootfs"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/versions"
)

// TestRootfsPackages are the Debian packages the e2e test images take their userland from, beyond
// RootfsPackages: nginx, dig/nslookup/host and netcat. A root filesystem of its own (keyed by its
// package set), so the product images' keys do not change.
func TestRootfsPackages() []string {
	return append(RootfsPackages(), "nginx-light", "bind9-dnsutils", "netcat-openbsd")
}

// TestImage is one image of the e2e image manifest (test/utils/image/manifest.go of a release).
type TestImage struct {
	ID   string // the manifest's ImageID, e.g. "Agnhost"
	Name string // full reference, e.g. registry.k8s.io/e2e-test-images/agnhost:2.66.1
}

// testRecipes are the manifest ImageIDs the lab builds, with how. "product" means the image is
// already one of the release's product images (same name), served by every lab.
var testRecipes = map[string]string{
	"Agnhost":         "agnhost",
	"AgnhostPrev":     "agnhost", // the same agnhost under the previous tag (tests roll from one to the other)
	"BusyBox":         "busybox",
	"GlibcDnsTesting": "dnsutils",
	"Kitten":          "kitten",
	"Nautilus":        "nautilus",
	"Nginx":           "nginx",
	"NginxNew":        "nginx",
	"NonRoot":         "nonroot",
	"Nonewprivs":      "nonewprivs",
	"APIServer":       "sample-apiserver",
	"Pause":           "product",
	"Etcd":            "product",
}

// TestImagesNotBuilt are the manifest's images the lab does not build, with the reason; docs/
// conformance.md lists the tests that need them.
var TestImagesNotBuilt = map[string]string{
	"AgnhostPrivate":          "lives in a private registry on purpose (credential provider test); the lab has no credentials to test",
	"AppArmorLoader":          "AppArmor is not enabled in the lab hosts' kernel; no conformance test uses it",
	"DistrolessIptables":      "not used by conformance tests",
	"InvalidRegistryImage":    "must not exist (tests expect its pull to fail)",
	"IpcUtils":                "not used by conformance tests",
	"NFSProvisioner":          "storage tests outside conformance",
	"NodePerfNpbEp":           "node performance tests outside conformance",
	"NodePerfNpbIs":           "node performance tests outside conformance",
	"NodePerfPytorchWideDeep": "node performance tests outside conformance",
	"Perl":                    "not used by conformance tests",
	"RegressionIssue74839":    "not used by conformance tests",
	"ResourceConsumer":        "autoscaling tests outside conformance",
	"VolumeNFSServer":         "storage tests outside conformance",
	"VolumeISCSIServer":       "storage tests outside conformance",
	"SampleDevicePlugin":      "device plugin tests outside conformance",
}

var (
	manifestConfigRE   = regexp.MustCompile(`configs\[(\w+)\] = Config\{list\.(\w+), "([^"]+)", "([^"]+)"\}`)
	manifestRegistryRE = regexp.MustCompile(`(?m)^\s*(\w+Registry):\s+"([^"]+)",`)
)

// ParseImageManifest reads test/utils/image/manifest.go's default registries and image configs
// into full image names by ImageID, exactly as the e2e framework names them without
// KUBE_TEST_REPO_LIST.
func ParseImageManifest(src []byte) (map[string]string, error) {
	regs := map[string]string{}
	for _, m := range manifestRegistryRE.FindAllSubmatch(src, -1) {
		if _, ok := regs[string(m[1])]; !ok {
			regs[string(m[1])] = string(m[2])
		}
	}
	out := map[string]string{}
	for _, m := range manifestConfigRE.FindAllSubmatch(src, -1) {
		reg, ok := regs[string(m[2])]
		if !ok {
			return nil, fmt.Errorf("image manifest: %s uses registry %s, which has no default", m[1], m[2])
		}
		out[string(m[1])] = fmt.Sprintf("%s/%s:%s", reg, m[3], m[4])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("image manifest: no image configs found (the file changed shape)")
	}
	return out, nil
}

// TestImages lists a release's e2e images the lab serves (sorted by ID) and those it does not, read
// from the release's own manifest.
func (b *Builder) TestImages(ctx context.Context, kubernetesVersion string) (built []TestImage, notBuilt map[string]string, err error) {
	manifest, _, err := b.manifest(ctx, kubernetesVersion)
	if err != nil {
		return nil, nil, err
	}
	notBuilt = map[string]string{}
	for id, name := range manifest {
		if _, ok := testRecipes[id]; ok {
			built = append(built, TestImage{ID: id, Name: name})
			continue
		}
		reason, ok := TestImagesNotBuilt[id]
		if !ok {
			reason = "no lab recipe yet (new in this release's manifest)"
		}
		notBuilt[name] = reason
	}
	sort.Slice(built, func(i, j int) bool { return built[i].ID < built[j].ID })
	return built, notBuilt, nil
}

func (b *Builder) manifest(ctx context.Context, kubernetesVersion string) (map[string]string, string, error) {
	if b.opts.Binaries == nil {
		return nil, "", fmt.Errorf("images: Options.Binaries is required")
	}
	dir, err := b.opts.Binaries.ModuleDir(ctx, "k8s.io/kubernetes", kubernetesVersion)
	if err != nil {
		return nil, "", err
	}
	src, err := os.ReadFile(filepath.Join(dir, "test", "utils", "image", "manifest.go"))
	if err != nil {
		return nil, "", fmt.Errorf("e2e image manifest: %w", err)
	}
	m, err := ParseImageManifest(src)
	return m, dir, err
}

// Conformance builds (or finds) the e2e test images of a release into the lab's OCI layout, under
// exactly the manifest's names. Pause and etcd are product images (Release builds them).
func (b *Builder) Conformance(ctx context.Context, kubernetesVersion string) ([]Image, error) {
	r, ok := versions.Lookup(kubernetesVersion)
	if !ok {
		return nil, fmt.Errorf("kubernetes %s is not supported (supported: %s)", kubernetesVersion, versions.SupportedList())
	}
	c, err := b.cacheDir()
	if err != nil {
		return nil, err
	}
	manifest, k8sDir, err := b.manifest(ctx, r.Kubernetes)
	if err != nil {
		return nil, err
	}
	set, err := b.opts.Binaries.TestBinaries(ctx, r.Kubernetes)
	if err != nil {
		return nil, err
	}
	tb, err := rootfs.Ensure(ctx, c, TestRootfsPackages()...)
	if err != nil {
		return nil, err
	}
	t, err := unpack(ctx, tb.Path)
	if err != nil {
		return nil, err
	}
	product := map[string]bool{}
	for _, n := range productImageNames(r) {
		product[n] = true
	}
	ids := make([]string, 0, len(testRecipes))
	for id := range testRecipes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	st := &store{dir: filepath.Join(c, "images"), log: b.opts.Log}
	var out []Image
	for _, id := range ids {
		name, ok := manifest[id]
		if !ok {
			return nil, fmt.Errorf("e2e image manifest of %s has no %s", r.Kubernetes, id)
		}
		if testRecipes[id] == "product" {
			if !product[name] {
				return nil, fmt.Errorf("e2e image %s (%s) is not a product image of %s", name, id, r.Kubernetes)
			}
			continue
		}
		s, err := testRecipe(testRecipes[id], name, set, t, k8sDir)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
		img, err := st.ensure(ctx, s)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// toolboxBinaries are the real (glibc) tools the agnhost and DNS test images carry; the tests run
// them in `sh -c` scripts (dig, getent, nc, curl).
var toolboxBinaries = []string{
	"/usr/bin/bash", "/usr/bin/dig", "/usr/bin/nslookup", "/usr/bin/host", "/usr/bin/getent",
	"/usr/bin/curl", "/usr/bin/nc", "/usr/bin/socat", "/usr/bin/ip",
}

// toolbox lays out a Debian userland for test images: usr-merge links, the real tools above with
// their libraries, every busybox applet for the rest, account files and /tmp.
func (t *tree) toolbox(s *fileSet, users ...string) error {
	usrMerge(s)
	seen := map[string]bool{}
	for _, b := range toolboxBinaries {
		if err := t.addELF(s, b, seen); err != nil {
			return err
		}
	}
	if err := t.addAllBusybox(s); err != nil {
		return err
	}
	// Debian's static busybox runs its own applets first (sh standalone), so `sh -c 'nc -v …'` would
	// get busybox's nc, which lacks -v: sh is bash here, and PATH decides.
	s.symlink("/usr/bin/sh", "bash")
	etcUsers(s, users...)
	s.content("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n", 0o644)
	for _, f := range []string{"/etc/protocols", "/etc/services"} {
		if _, err := t.add(s, f); err != nil {
			return err
		}
	}
	s.dir("/tmp", 0o1777)
	return nil
}

// addAllBusybox adds Debian's static busybox with every applet it lists, leaving real binaries of
// the same name alone: the rest of the userland of the agnhost-based images.
func (t *tree) addAllBusybox(s *fileSet) error {
	if _, err := t.add(s, "/usr/bin/busybox"); err != nil {
		return err
	}
	return linkApplets(s, filepath.Join(t.root, "usr/bin/busybox"))
}

// linkApplets links every applet a busybox binary lists to /usr/bin/busybox, unless the image
// already has a file of that name.
func linkApplets(s *fileSet, busybox string) error {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		p := "/usr/bin/" + a
		if _, ok := s.entries[p]; !ok {
			s.symlink(p, "busybox")
		}
	}
	return nil
}

// testRecipe lays out one e2e test image.
func testRecipe(kind, name string, set build.Set, t *tree, k8sDir string) (*spec, error) {
	s := &spec{Name: name, files: newFileSet()}
	agnhost := func() error {
		// As upstream's Dockerfile: /agnhost (entrypoint, CMD pause), /agnhost-2, /uploads, porter's
		// test certificate, a user and group defined in the image.
		if err := t.toolbox(s.files, "user-defined-in-image"); err != nil {
			return err
		}
		s.files.file("/agnhost", set.Path(build.Agnhost), 0o755)
		s.files.symlink("/agnhost-2", "agnhost")
		s.files.dir("/uploads", 0o755)
		for _, f := range []string{"localhost.crt", "localhost.key"} {
			s.files.file("/"+f, filepath.Join(k8sDir, "test/images/agnhost/porter", f), 0o644)
		}
		s.files.content("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644)
		s.files.content("/etc/group", "root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnogroup:x:65534:\n", 0o644)
		s.files.content("/etc/os-release", agnhostOSRelease, 0o644)
		s.Entrypoint, s.Cmd = []string{"/agnhost"}, []string{"pause"}
		return nil
	}
	busybox := func() error {
		// Upstream's busybox built from its release tarball (build.BusyboxBinary says why not
		// Debian's), with every applet, sh included.
		usrMerge(s.files)
		s.files.file("/usr/bin/busybox", set.Path(build.Busybox), 0o755)
		if err := linkApplets(s.files, set.Path(build.Busybox)); err != nil {
			return err
		}
		etcUsers(s.files)
		s.files.dir("/tmp", 0o1777)
		s.files.dir("/root", 0o700)
		s.Cmd = []string{"sh"}
		return nil
	}
	switch kind {
	case "agnhost":
		if err := agnhost(); err != nil {
			return nil, err
		}
	case "kitten", "nautilus":
		// agnhost plus two static files at /, serving them with test-webserver.
		if err := agnhost(); err != nil {
			return nil, err
		}
		html := filepath.Join(k8sDir, "test/images", kind, "html")
		s.files.file("/"+kind+".jpg", filepath.Join(html, kind+".jpg"), 0o644)
		s.files.file("/data.json", filepath.Join(html, "data.json"), 0o644)
		s.Cmd = []string{"test-webserver"}
	case "busybox":
		if err := busybox(); err != nil {
			return nil, err
		}
	case "nonroot":
		if err := busybox(); err != nil {
			return nil, err
		}
		s.User = "1234"
	case "nonewprivs":
		if err := busybox(); err != nil {
			return nil, err
		}
		s.files.file("/usr/local/bin/nnp", set.Path(build.NoNewPrivs), 0o4755)
		s.Cmd = []string{"nnp"}
	case "dnsutils":
		if err := t.toolbox(s.files); err != nil {
			return nil, err
		}
		s.Cmd = []string{"sh"}
	case "nginx":
		if err := t.toolbox(s.files, "nginx"); err != nil {
			return nil, err
		}
		if err := t.addELF(s.files, "/usr/sbin/nginx", map[string]bool{}); err != nil {
			return nil, err
		}
		if _, err := t.add(s.files, "/etc/nginx/mime.types"); err != nil {
			return nil, err
		}
		// Upstream's image serves /usr/share/nginx/html on port 80 in the foreground.
		s.files.content("/etc/nginx/nginx.conf", nginxConf, 0o644)
		s.files.content("/usr/share/nginx/html/index.html", nginxIndex, 0o644)
		s.files.dir("/var/lib/nginx", 0o755)
		s.files.dir("/var/log/nginx", 0o755)
		s.files.dir("/run", 0o755)
		s.Cmd = []string{"nginx", "-g", "daemon off;"}
	case "sample-apiserver":
		s.files.file("/sample-apiserver", set.Path(build.SampleAPIServer), 0o755)
		etcUsers(s.files)
		s.files.dir("/tmp", 0o1777)
		s.Entrypoint = []string{"/sample-apiserver"}
	default:
		return nil, fmt.Errorf("no e2e image recipe %q", kind)
	}
	return s, nil
}

// agnhostOSRelease says what the agnhost images are. Upstream's are built on Alpine Linux, and the
// ImageVolume spec reads /etc/os-release through an image volume of kitten expecting those words:
// the file names upstream's base as such and this image's real userland.
const agnhostOSRelease = `PRETTY_NAME="e2e test image rebuilt by the installer lab (upstream builds it on Alpine Linux; this userland is Debian 12)"
NAME="installer lab e2e image"
ID=installer-lab-e2e
HOME_URL="https://github.com/kubernetes/kubernetes/tree/master/test/images"
`

const nginxConf = `user nginx;
worker_processes 1;
error_log /dev/stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    keepalive_timeout 65;
    server {
        listen 80;
        server_name localhost;
        location / {
            root /usr/share/nginx/html;
            index index.html index.htm;
        }
    }
}
`

const nginxIndex = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body><h1>Welcome to nginx!</h1></body>
</html>
`

// productImageNames are the release's product images the lab builds (Release).
func productImageNames(r versions.Release) []string {
	notBuilt := NotBuilt(r)
	var out []string
	for _, i := range manifests.DefaultImages(r) {
		if _, skip := notBuilt[i.Name]; !skip {
			out = append(out, i.Name)
		}
	}
	return out
}
