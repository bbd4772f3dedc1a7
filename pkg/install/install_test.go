package install

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// mirror serves files and their .sha256 the way dl.k8s.io does (digest only) or GitHub release
// assets do (digest and file name).
func mirror(t *testing.T, files map[string][]byte, sums map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, ok := sums[r.URL.Path]; ok {
			_, _ = w.Write([]byte(s))
			return
		}
		if b, ok := files[r.URL.Path]; ok {
			_, _ = w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// published is the checksum file upstream publishes beside url.
func published(url string) Checksum { return Checksum{PublishedAt: ChecksumURL(url)} }

func runLocal(t *testing.T, argv []string) (string, error) {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

func TestDownloadBinary(t *testing.T) {
	bin := []byte("#!/bin/sh\necho v1.36.5\n")
	path := "/release/v1.36.5/bin/linux/amd64/kubeadm"
	srv := mirror(t, map[string][]byte{path: bin, "/bad": bin},
		map[string]string{path + ".sha256": sha(bin), "/bad.sha256": strings.Repeat("0", 64)})
	dir := t.TempDir()
	dest := filepath.Join(dir, "kubeadm")

	if url := KubeBinaryURL(srv.URL+"/", "v1.36.5", "amd64", "kubeadm"); url != srv.URL+path {
		t.Fatalf("KubeBinaryURL = %s", url)
	}
	out, err := runLocal(t, DownloadBinary(srv.URL+path, published(srv.URL+path), dest, ""))
	if err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(dest)
	st, _ := os.Stat(dest)
	if !bytes.Equal(got, bin) || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed %q mode %v", got, st.Mode())
	}

	// A checksum mismatch leaves the installed binary alone and no temporary file behind.
	out, err = runLocal(t, DownloadBinary(srv.URL+"/bad", published(srv.URL+"/bad"), dest, ""))
	if err == nil || !strings.Contains(out, "checksum mismatch for "+srv.URL+"/bad") {
		t.Fatalf("mismatch not refused: %v\n%s", err, out)
	}
	// A missing .sha256 is refused too.
	out, err = runLocal(t, DownloadBinary(srv.URL+"/nosum", published(srv.URL+"/nosum"), filepath.Join(dir, "x"), ""))
	if err == nil {
		t.Fatalf("download without a published checksum succeeded:\n%s", out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftovers in %s: %v", dir, entries)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, bin) {
		t.Error("a failed download replaced the installed binary")
	}
}

func tgz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Uid: 1001}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestDownloadArchive(t *testing.T) {
	archive := tgz(t, map[string]string{"./bridge": "b", "./host-local": "h"})
	url := CNIPluginsURL("http://m", "v1.9.1", "amd64")
	if url != "http://m/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz" {
		t.Fatalf("CNIPluginsURL = %s", url)
	}
	if c := CrictlURL("http://m/", "v1.36.0", "arm64"); c != "http://m/kubernetes-sigs/cri-tools/releases/download/v1.36.0/crictl-v1.36.0-linux-arm64.tar.gz" {
		t.Fatalf("CrictlURL = %s", c)
	}
	p := "/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz"
	srv := mirror(t, map[string][]byte{p: archive}, map[string]string{p + ".sha256": sha(archive) + "  cni-plugins-linux-amd64-v1.9.1.tgz\n"})
	dir := filepath.Join(t.TempDir(), "cni", "bin")
	marker := filepath.Join(dir, ".version")
	out, err := runLocal(t, DownloadArchive(srv.URL+p, Checksum{Digest: sha(archive)}, dir, "v1.9.1", marker, ""))
	if err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	for name, body := range map[string]string{"bridge": "b", "host-local": "h", ".version": "v1.9.1\n"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != body {
			t.Errorf("%s = %q, %v", name, got, err)
		}
	}
}

// TestAptGet runs the apt wrapper with a stand-in apt-get that prints its arguments.
func TestAptGet(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "apt-get"), []byte("#!/bin/sh\nprintf '%s|' \"$DEBIAN_FRONTEND\" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// This machine's own apt may hold its lock while the test runs: no lock holder here.
	if err := os.WriteFile(filepath.Join(bin, "lslocks"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &v1alpha1.ClusterSpec{Install: v1alpha1.Install{PackageProxy: "http://10.0.0.5:3142"}}
	argv, err := PackageInstall(s, "apt", "containerd", "runc")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "noninteractive|-o|Acquire::http::Proxy=http://10.0.0.5:3142|-q|-y|-o|DPkg::Lock::Timeout=300|-o|Dpkg::Options::=--force-confdef|-o|Dpkg::Options::=--force-confold|-o|Acquire::http::Pipeline-Depth=0|-o|Acquire::http::Timeout=60|install|--no-install-recommends|containerd|runc|"
	if string(out) != want {
		t.Errorf("apt-get got\n%s\nwant\n%s", out, want)
	}
	if _, err := PackageInstall(s, "zypper", "x"); err == nil {
		t.Error("unknown package manager accepted")
	}
}

func TestPackageNames(t *testing.T) {
	s := &v1alpha1.ClusterSpec{KubernetesVersion: "v1.36.5", Install: v1alpha1.Install{PackageRepository: "https://pkgs.k8s.io/core:/stable:/"}}
	if got, err := RepositoryURL(s, "apt"); err != nil || got != "https://pkgs.k8s.io/core:/stable:/v1.36/deb/" {
		t.Errorf("RepositoryURL apt = %s, %v", got, err)
	}
	if got, err := RepositoryURL(s, "dnf"); err != nil || got != "https://pkgs.k8s.io/core:/stable:/v1.36/rpm/" {
		t.Errorf("RepositoryURL dnf = %s, %v", got, err)
	}
	want := map[string]string{"kubeadm": "1.36.5-1.1", "kubelet": "1.36.5-1.1", "kubectl": "1.36.5-1.1", "cri-tools": "1.36.0-1.1", "kubernetes-cni": "1.9.1-1.1"}
	if got, err := KubePackageVersions(s); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("KubePackageVersions = %v, %v", got, err)
	}
	s.ContainerRuntime.Containerd.Version = "1.6.20~ds1-1+deb12u3"
	if got := ContainerdPackages(s, "apt"); !reflect.DeepEqual(got, []string{"containerd=1.6.20~ds1-1+deb12u3", "runc"}) {
		t.Errorf("ContainerdPackages = %v", got)
	}
}

// TestUnsupportedRelease: a version the release table lacks is an error naming it, never a zero
// release (whose Minor panicked in MustParseSemantic and whose package versions read "-").
func TestUnsupportedRelease(t *testing.T) {
	s := &v1alpha1.ClusterSpec{KubernetesVersion: "v1.99.0", Install: v1alpha1.Install{PackageRepository: "https://pkgs.k8s.io/core:/stable:/"}}
	const want = `kubernetes "v1.99.0" is not supported (supported: v1.35.8, v1.36.5, v1.37.2)`
	if r, err := Release(s); err == nil || err.Error() != want {
		t.Errorf("Release = %+v, %v; want %s", r, err, want)
	}
	if u, err := RepositoryURL(s, "apt"); err == nil || err.Error() != want {
		t.Errorf("RepositoryURL = %q, %v; want %s", u, err, want)
	}
	if v, err := KubePackageVersions(s); err == nil || err.Error() != want {
		t.Errorf("KubePackageVersions = %v, %v; want %s", v, err, want)
	}
}

// TestAptGetWaitsForLock runs the apt wrapper with stand-ins for lslocks (a lock holder), date (a
// clock that jumps) and sleep: a lock held past the deadline is reported with its holder and exit 75,
// apt-get never runs; a lock released in time is waited for, then apt-get runs.
func TestAptGetWaitsForLock(t *testing.T) {
	tests := []struct {
		name string
		// heldFor is how many lslocks calls report the holder.
		heldFor  int
		wantExit int
		wantOut  string
	}{
		{"held past the deadline", 1000, AptLockHeldExit, "apt lock held by unattended-upgr (pid 812)\n"},
		{"released in time", 2, 0, "apt-get ran: update\n"},
		{"free", 0, 0, "apt-get ran: update\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin, state := t.TempDir(), t.TempDir()
			scripts := map[string]string{
				"apt-get": "#!/bin/sh\nfor a in \"$@\"; do last=$a; done\necho \"apt-get ran: $last\"\n",
				// Each call advances the clock by 100 s: the 300 s deadline passes on the fourth check.
				"date":  "#!/bin/sh\nn=$(cat " + state + "/clock 2>/dev/null || echo 0); echo $((n+100)) > " + state + "/clock; echo $((1000+n))\n",
				"sleep": "#!/bin/sh\nexit 0\n",
				"lslocks": fmt.Sprintf("#!/bin/sh\nn=$(cat %s/calls 2>/dev/null || echo 0); echo $((n+1)) > %s/calls\n"+
					"echo 'sshd 77 /run/sshd.pid'\n[ \"$n\" -lt %d ] && echo 'unattended-upgr 812 /var/lib/dpkg/lock-frontend'\nexit 0\n", state, state, tt.heldFor),
			}
			for n, body := range scripts {
				if err := os.WriteFile(filepath.Join(bin, n), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			argv := AptGet(&v1alpha1.ClusterSpec{}, "update")
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantExit || string(out) != tt.wantOut {
				t.Errorf("exit %d, output %q; want exit %d, %q", code, out, tt.wantExit, tt.wantOut)
			}
		})
	}
}

// TestAptUpdateRetriesAHang: an `apt-get update` killed by its deadline (exit 124) is tried again;
// other failures are not. A stand-in timeout reports a hang on its first call only.
func TestAptUpdateRetriesAHang(t *testing.T) {
	for _, tt := range []struct {
		name, sub string
		firstExit int
		wantExit  int
		wantCalls string
	}{
		{"update hangs once", "update", 124, 0, "2\n"},
		{"update fails for real", "update", 100, 100, "1\n"},
		{"install is never retried", "install", 124, 124, "1\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bin, state := t.TempDir(), t.TempDir()
			write := func(name, body string) {
				if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write("lslocks", "#!/bin/sh\nexit 0\n")
			write("apt-get", "#!/bin/sh\necho \"apt-get ran: $*\"\n")
			write("timeout", fmt.Sprintf("#!/bin/sh\nn=$(cat %[1]s/calls 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s/calls\n"+
				"[ $n -eq 1 ] && exit %[2]d\nwhile [ \"${1#-}\" != \"$1\" ]; do shift; done\nshift\nexec \"$@\"\n", state, tt.firstExit))
			argv := AptGet(&v1alpha1.ClusterSpec{}, tt.sub)
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			calls, _ := os.ReadFile(filepath.Join(state, "calls"))
			if code != tt.wantExit || string(calls) != tt.wantCalls {
				t.Fatalf("exit %d after %q calls, want %d after %q\n%s", code, calls, tt.wantExit, tt.wantCalls, out)
			}
			if tt.name == "update hangs once" && (!strings.Contains(string(out), "apt-get update hung (attempt 1 of 4)") || !strings.Contains(string(out), "apt-get ran:")) {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}
