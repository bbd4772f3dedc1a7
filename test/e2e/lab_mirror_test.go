//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/images"
	"installer.dev/installer/lab/mirror"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/versions"
)

// logWriter sends builder progress to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startMirror serves every release on a loopback port for the test's lifetime. A build failure
// fails the test (it never skips).
func startMirror(t *testing.T, ctx context.Context) *mirror.Server {
	t.Helper()
	start := time.Now()
	srv, err := mirror.Start(ctx, mirror.Options{Addr: "127.0.0.1:0", Log: logWriter{t}})
	if err != nil {
		fatalf(t, "start mirror: %v", err)
	}
	t.Logf("mirror up in %s at %s", time.Since(start).Round(time.Millisecond), srv.URL())
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			errorf(t, "close mirror: %v", err)
		}
	})
	return srv
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestLabBinariesPrintPinnedVersions runs every binary of every release's set and checks the version
// it reports against pkg/versions.
func TestLabBinariesPrintPinnedVersions(t *testing.T) {
	ctx := testContext(t)
	b := build.New(build.Options{Log: logWriter{t}})
	for _, r := range versions.Releases() {
		set, err := b.Set(ctx, r.Kubernetes)
		if err != nil {
			fatalf(t, "build %s: %v", r.Kubernetes, err)
		}
		etcd := strings.TrimPrefix(r.EtcdModule, "v")
		cases := []struct {
			bin  string
			args []string
			env  []string
			want string
		}{
			{"kubeadm", []string{"version", "-o", "short"}, nil, r.Kubernetes},
			{"kubelet", []string{"--version"}, nil, "Kubernetes " + r.Kubernetes},
			{"kubectl", []string{"version", "--client"}, nil, "Client Version: " + r.Kubernetes},
			{"kube-apiserver", []string{"--version"}, nil, "Kubernetes " + r.Kubernetes},
			{"kube-controller-manager", []string{"--version"}, nil, "Kubernetes " + r.Kubernetes},
			{"kube-scheduler", []string{"--version"}, nil, "Kubernetes " + r.Kubernetes},
			{"kube-proxy", []string{"--version"}, nil, "Kubernetes " + r.Kubernetes},
			{"lab-cloud-controller-manager", []string{"--version"}, nil, "Kubernetes " + r.Kubernetes},
			{"etcd", []string{"--version"}, nil, "etcd Version: " + etcd},
			{"etcdctl", []string{"version"}, nil, "etcdctl version: " + etcd},
			{"etcdutl", []string{"version"}, nil, "etcdutl version: " + etcd},
			{"coredns", []string{"-version"}, nil, "CoreDNS-" + strings.TrimPrefix(r.CoreDNS, "v")},
			{"crictl", []string{"--version"}, nil, "crictl version " + r.CRITools},
			{"flanneld", []string{"--version"}, nil, r.Flannel},
			{"runc", []string{"--version"}, nil, "runc version " + strings.TrimPrefix(versions.Containerd().Runc, "v")},
			{"containerd", []string{"--version"}, nil, "containerd github.com/containerd/containerd/v2 " + versions.Containerd().Containerd},
			{"containerd-shim-runc-v2", []string{"-v"}, nil, versions.Containerd().Containerd},
			{"ctr", []string{"--version"}, nil, "ctr github.com/containerd/containerd/v2 " + versions.Containerd().Containerd},
			{"pause", []string{"-v"}, nil, build.PauseVersion},
			{"labnet", []string{"version"}, nil, "labnet 1"},
			{"bridge", nil, nil, "CNI bridge plugin " + r.CNIPlugins},
			{"host-local", nil, nil, "CNI host-local plugin " + r.CNIPlugins},
			{"loopback", nil, nil, "CNI loopback plugin " + r.CNIPlugins},
			{"portmap", nil, nil, "CNI portmap plugin " + r.CNIPlugins},
			{"flannel", nil, nil, "CNI flannel plugin " + build.FlannelCNIPluginModule},
		}
		names, err := build.Names(r.Kubernetes)
		if err != nil {
			fatal(t, err)
		}
		if len(names) != len(cases) {
			errorf(t, "%s: the set has %d binaries %v, the test checks %d", r.Kubernetes, len(names), names, len(cases))
		}
		for _, c := range cases {
			path := set.Path(c.bin)
			if path == "" {
				errorf(t, "%s: set has no %s", r.Kubernetes, c.bin)
				continue
			}
			cmd := exec.CommandContext(ctx, path, c.args...)
			cmd.Env = append(os.Environ(), c.env...)
			out, _ := cmd.CombinedOutput() // CNI plugins exit 1 without CNI_COMMAND after printing their version
			if !strings.Contains(string(out), c.want) {
				errorf(t, "%s %s %v: output %q does not contain %q", r.Kubernetes, c.bin, c.args, out, c.want)
			}
		}
	}
}

// TestLabMirror starts the mirror and checks images, files and a real containerd pull through it.
func TestLabMirror(t *testing.T) {
	ctx := testContext(t)
	srv := startMirror(t, ctx)
	host := strings.TrimPrefix(srv.URL(), "http://")
	b := build.New(build.Options{Log: logWriter{t}})

	t.Run("kubeadm images pullable", func(t *testing.T) {
		for _, r := range versions.Releases() {
			kubeadm, err := b.Binary(ctx, "kubeadm", r.Kubernetes)
			if err != nil {
				fatal(t, err)
			}
			out, err := exec.CommandContext(ctx, kubeadm, "config", "images", "list", "--kubernetes-version", r.Kubernetes).Output()
			if err != nil {
				fatalf(t, "kubeadm config images list: %v", err)
			}
			listed := strings.Fields(string(out))
			if strings.Join(listed, " ") != strings.Join(manifests.KubeadmImages(r), " ") {
				errorf(t, "%s: kubeadm lists %v, the image table says %v", r.Kubernetes, listed, manifests.KubeadmImages(r))
			}
			for _, img := range listed {
				checkPullable(ctx, t, host, img)
			}
		}
	})

	t.Run("every table and lab image pullable", func(t *testing.T) {
		for _, r := range versions.Releases() {
			skip := images.NotBuilt(r)
			for _, img := range manifests.DefaultImages(r) {
				if _, ok := skip[img.Name]; !ok {
					checkPullable(ctx, t, host, img.Name)
				}
			}
			checkPullable(ctx, t, host, images.CCMImage(r.Kubernetes))
		}
		checkPullable(ctx, t, host, images.LabnetImage)
		checkPullable(ctx, t, host, images.BusyboxImage)
	})

	t.Run("image binaries and userland run", func(t *testing.T) {
		r := versions.Default()
		img := func(c string) string {
			i, err := manifests.ImageFor(r, c)
			if err != nil {
				fatal(t, err)
			}
			return i.Name
		}
		checks := []struct {
			image string
			argv  []string
			want  string
		}{
			{img("kube-proxy"), []string{"/usr/local/bin/kube-proxy", "--version"}, "Kubernetes " + r.Kubernetes},
			{img("kube-proxy"), []string{"iptables", "--version"}, "(nf_tables)"},
			{img("kube-proxy"), []string{"ip6tables-restore", "--version"}, "(nf_tables)"},
			// The statistic match is dlopen'ed with libm: Services with several endpoints need it.
			{img("kube-proxy"), []string{"iptables", "-m", "statistic", "--help"}, "statistic match options"},
			{img("kube-proxy"), []string{"nft", "--version"}, "nftables"},
			{img("kube-proxy"), []string{"conntrack", "--version"}, "conntrack"},
			{img("etcd"), []string{"etcdctl", "version"}, "etcdctl version"},
			{img("etcd"), []string{"etcdutl", "version"}, "etcdutl version"},
			{img("coredns"), []string{"/coredns", "-version"}, "CoreDNS-"},
			{img("pause"), []string{"/pause", "-v"}, r.Pause},
			{img("flannel"), []string{"/opt/bin/flanneld", "--version"}, r.Flannel},
			{img("flannel"), []string{"iptables-save", "--version"}, "(nf_tables)"},
			{img("flannel"), []string{"sh", "-c", "cp /etc/protocols /tmp/p && echo copied"}, "copied"},
			{img("flannel-cni-plugin"), []string{"/flannel"}, "CNI flannel plugin"},
			{img("flannel-cni-plugin"), []string{"cp", "-f", "/flannel", "/tmp/flannel"}, ""},
			{img("keepalived"), []string{"/usr/sbin/keepalived", "--version"}, "Keepalived v"},
			{img("keepalived"), []string{"sh", "-c", "curl --version"}, "curl "},
			{img("haproxy"), []string{"haproxy", "-v"}, "HAProxy version"},
			{images.CCMImage(r.Kubernetes), []string{"/usr/local/bin/lab-cloud-controller-manager", "--version"}, "Kubernetes " + r.Kubernetes},
			{images.LabnetImage, []string{"/labnet", "version"}, "labnet 1"},
			{images.BusyboxImage, []string{"sh", "-c", "echo ok"}, "ok"},
		}
		roots := map[string]string{}
		for _, c := range checks {
			root, ok := roots[c.image]
			if !ok {
				root = extractImage(ctx, t, host, c.image)
				roots[c.image] = root
			}
			cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
			// exec looks bare names up on the host; look them up in the image's PATH instead.
			cmd.Path, cmd.Err = lookPathIn(root, c.argv[0]), nil
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
			cmd.Dir = "/"
			cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
			out, err := cmd.CombinedOutput()
			if c.want == "" && err != nil {
				errorf(t, "%s: %v: %v: %s", c.image, c.argv, err, out)
			}
			if !strings.Contains(string(out), c.want) {
				errorf(t, "%s: %v printed %q, want %q (err %v)", c.image, c.argv, out, c.want, err)
			}
		}
	})

	t.Run("files match their sha256", func(t *testing.T) {
		var want []string
		for _, r := range versions.Releases() {
			for _, c := range []string{"kubeadm", "kubelet", "kubectl"} {
				want = append(want, mirror.KubernetesBinaryPath(r.Kubernetes, c))
			}
			want = append(want, mirror.CNIPluginsPath(r.CNIPlugins), mirror.CrictlPath(r.CRITools))
		}
		want = append(want, mirror.RuncPath(versions.Containerd().Runc), mirror.ContainerdPath(versions.Containerd().Containerd))
		served := map[string]bool{}
		for _, f := range srv.Content.Files {
			served[f] = true
		}
		for _, w := range want {
			if !served[w] {
				errorf(t, "mirror does not serve %s", w)
			}
		}
		for _, f := range srv.Content.Files {
			sum := httpSHA256(t, srv.URL()+f)
			published, err := install.PickChecksum(httpGet(t, srv.URL()+install.ChecksumURL(f)), path.Base(f))
			if err != nil || published != sum {
				errorf(t, "%s: sha256 %s, %s says %q (%v)", f, sum, install.ChecksumURL(f), published, err)
			}
		}
	})

	t.Run("containerd pulls pause through a hosts.toml mirror", func(t *testing.T) {
		r := versions.Default()
		ctrd, err := b.DebianPackage(ctx, "containerd")
		if err != nil {
			fatal(t, err)
		}
		crictl, err := b.Binary(ctx, "crictl", r.Kubernetes)
		if err != nil {
			fatal(t, err)
		}
		image := "registry.k8s.io/pause:" + r.Pause
		ref, err := name.ParseReference(host+"/pause:"+r.Pause, name.Insecure)
		if err != nil {
			fatal(t, err)
		}
		img, err := remote.Image(ref, remote.WithContext(ctx))
		if err != nil {
			fatal(t, err)
		}
		id, err := img.ConfigName()
		if err != nil {
			fatal(t, err)
		}
		// The image ID is the config digest: equal only if containerd got the lab's own pause.
		pullThroughContainerd(ctx, t, filepath.Join(ctrd, "usr", "bin", "containerd"), crictl, host, image, id.String())
	})
}

// checkPullable fetches an image the way a mirror client does (registry host dropped) and reads its
// config and layer digests.
func checkPullable(ctx context.Context, t *testing.T, host, image string) {
	t.Helper()
	slash := strings.Index(image, "/")
	ref, err := name.ParseReference(host+"/"+image[slash+1:], name.Insecure)
	if err != nil {
		errorf(t, "%s: %v", image, err)
		return
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		errorf(t, "%s not pullable: %v", image, err)
		return
	}
	cfg, err := img.ConfigFile()
	if err != nil || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		errorf(t, "%s: config %+v, err %v", image, cfg, err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		errorf(t, "%s: layers %d, err %v", image, len(layers), err)
		return
	}
	size, err := layers[0].Size()
	if err != nil || size == 0 {
		errorf(t, "%s: layer size %d, err %v", image, size, err)
	}
}

// lookPathIn finds a command in the image's PATH (a file or a link there; links resolve after chroot).
func lookPathIn(root, name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if _, err := os.Lstat(filepath.Join(root, d, name)); err == nil {
			return d + "/" + name
		}
	}
	return "/nonexistent/" + name
}

// extractImage pulls an image through the mirror and unpacks its filesystem into a temporary
// directory (regular files, directories and symlinks, with their modes).
func extractImage(ctx context.Context, t *testing.T, host, image string) string {
	t.Helper()
	ref, err := name.ParseReference(host+"/"+image[strings.Index(image, "/")+1:], name.Insecure)
	if err != nil {
		fatal(t, err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		fatalf(t, "pull %s: %v", image, err)
	}
	root := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fatalf(t, "%s: %v", image, err)
		}
		p := filepath.Join(root, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode).Perm())
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode).Perm()); err == nil {
				_, err = io.Copy(f, tr)
				f.Close()
			}
		}
		if err != nil {
			fatalf(t, "%s: extract %s: %v", image, h.Name, err)
		}
	}
	return root
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		fatalf(t, "GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		fatalf(t, "GET %s: %s, %v", url, resp.Status, err)
	}
	return data
}

func httpSHA256(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		fatalf(t, "GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fatalf(t, "GET %s: %s", url, resp.Status)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		fatalf(t, "GET %s: %v", url, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pullThroughContainerd runs Debian's containerd with its own root, state and socket in a temporary
// directory and pulls image with crictl; registry.k8s.io resolves through certs.d/hosts.toml to the
// lab mirror. The server line also names the mirror, so a failure can never fall back to the internet.
func pullThroughContainerd(ctx context.Context, t *testing.T, containerd, crictl, mirrorHost, image, wantID string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "lab-containerd-")
	if err != nil {
		fatal(t, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "containerd.sock")
	hosts := fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", mirrorHost, mirrorHost)
	certs := filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(certs, "registry.k8s.io"), 0o755); err != nil {
		fatal(t, err)
	}
	if err := os.WriteFile(filepath.Join(certs, "registry.k8s.io", "hosts.toml"), []byte(hosts), 0o644); err != nil {
		fatal(t, err)
	}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[6]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[7]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"), certs, filepath.Join(dir, "cni"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		fatal(t, err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		fatal(t, err)
	}
	cmd := exec.Command(containerd, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		fatalf(t, "start containerd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		// containerd's overlay snapshots may stay mounted; unmount what is under our root.
		unmountUnder(t, dir)
	})
	ep := "unix://" + sock
	deadline := time.Now().Add(30 * time.Second)
	for {
		if out, err := exec.CommandContext(ctx, crictl, "--runtime-endpoint", ep, "version").CombinedOutput(); err == nil {
			break
		} else if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			fatalf(t, "containerd did not answer: %v: %s\n%s", err, out, tailString(string(log), 3000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, crictl, "--runtime-endpoint", ep, "--image-endpoint", ep, "pull", image).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(logf.Name())
		fatalf(t, "crictl pull %s: %v: %s\n%s", image, err, out, tailString(string(log), 3000))
	}
	t.Logf("pulled %s in %s: %s", image, time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	out, err = exec.CommandContext(ctx, crictl, "--runtime-endpoint", ep, "--image-endpoint", ep, "images", "-o", "json").Output()
	if err != nil {
		fatalf(t, "crictl images: %v", err)
	}
	if !strings.Contains(string(out), image) || !strings.Contains(string(out), wantID) {
		errorf(t, "containerd does not list %s with ID %s after the pull: %s", image, wantID, out)
	}
}

func unmountUnder(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && strings.HasPrefix(fields[1], dir) {
			mounts = append(mounts, fields[1])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if out, err := exec.Command("umount", mounts[i]).CombinedOutput(); err != nil {
			errorf(t, "umount %s: %v: %s", mounts[i], err, out)
		}
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
