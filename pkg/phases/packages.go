package phases

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

const (
	aptKeyring     = "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
	aptSourcesFile = "/etc/apt/sources.list.d/kubernetes.list"
	rpmRepoFile    = "/etc/yum.repos.d/kubernetes.repo"
	rpmKeyFile     = "/etc/pki/rpm-gpg/kubernetes.asc"
)

// fetchKeyScript downloads the repository's signing key ($1) to $2 unless the file already exists.
// $3 is an HTTP(S) proxy or "".
const fetchKeyScript = `set -eu
[ -s "$2" ] && exit 0
if [ -n "${3:-}" ]; then export https_proxy="$3" http_proxy="$3"; fi
mkdir -p "$(dirname "$2")"
curl -fsSL --retry 3 -o "$2.tmp" "$1"
grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$2.tmp" || { echo "$1 is not an armored OpenPGP key" >&2; rm -f "$2.tmp"; exit 1; }
chmod 0644 "$2.tmp"
mv -f "$2.tmp" "$2"`

// repositoryKey puts the repository's signing key at path: the spec's local key file, else the key
// the repository publishes beside its packages.
func (h *Host) repositoryKey(ctx context.Context, path, keyURL string) error {
	s := &h.run.Cluster.Spec
	if f := s.Install.PackageRepositoryKeyFile; f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("repository key: %w", err)
		}
		_, err = h.Upload(ctx, manifests.File{Path: path, Mode: 0o644, Content: data})
		return err
	}
	if _, err := h.Query(ctx, ssh.Cmd{Args: []string{"test", "-s", path}}); err == nil {
		return nil
	}
	_, err := h.Exec(ctx, ssh.Cmd{Args: []string{"sh", "-c", fetchKeyScript, "key", keyURL, path, install.Proxy(s)}, Idempotent: true})
	if err != nil {
		return fmt.Errorf("fetch repository key %s: %w", keyURL, err)
	}
	return nil
}

func (h *Host) installAptPackages(ctx context.Context, want map[string]string) error {
	s := &h.run.Cluster.Spec
	repo := install.RepositoryURL(s, "apt")
	if err := h.repositoryKey(ctx, aptKeyring, repo+"Release.key"); err != nil {
		return err
	}
	sources := fmt.Sprintf("# Managed by installer: the Kubernetes %s package repository.\ndeb [signed-by=%s] %s /\n", install.Release(s).Minor(), aptKeyring, repo)
	if _, err := h.Upload(ctx, manifests.File{Path: aptSourcesFile, Mode: 0o644, Content: []byte(sources)}); err != nil {
		return err
	}
	if _, err := h.Exec(ctx, ssh.Cmd{Args: install.AptGet(s, "update"), Idempotent: true}); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	pkgs := []string{}
	for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
		pkgs = append(pkgs, n+"="+want[n])
	}
	// cri-tools and kubernetes-cni come as dependencies; pin them to this minor's versions too.
	pkgs = append(pkgs, "cri-tools="+want["cri-tools"], "kubernetes-cni="+want["kubernetes-cni"])
	argv := install.AptGet(s, append([]string{"install", "--no-install-recommends", "--allow-change-held-packages", "--allow-downgrades"}, pkgs...)...)
	if _, err := h.Exec(ctx, ssh.Cmd{Args: argv, Idempotent: true}); err != nil {
		return fmt.Errorf("install Kubernetes packages: %w", err)
	}
	if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"apt-mark", "hold", "kubeadm", "kubelet", "kubectl"}}); err != nil {
		return fmt.Errorf("hold Kubernetes packages: %w", err)
	}
	return nil
}

func (h *Host) installRPMPackages(ctx context.Context, pm string, want map[string]string) error {
	s := &h.run.Cluster.Spec
	repo := install.RepositoryURL(s, "rpm")
	if err := h.repositoryKey(ctx, rpmKeyFile, repo+"repodata/repomd.xml.key"); err != nil {
		return err
	}
	// exclude= keeps a routine `dnf upgrade` from moving the cluster; the installer lifts it per call.
	conf := fmt.Sprintf(`# Managed by installer: the Kubernetes %s package repository.
[kubernetes]
name=Kubernetes %s
baseurl=%s
enabled=1
gpgcheck=1
gpgkey=file://%s
exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni
`, install.Release(s).Minor(), install.Release(s).Minor(), repo, rpmKeyFile)
	if s.Install.PackageProxy != "" {
		conf += "proxy=" + s.Install.PackageProxy + "\n"
	}
	if _, err := h.Upload(ctx, manifests.File{Path: rpmRepoFile, Mode: 0o644, Content: []byte(conf)}); err != nil {
		return err
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	pkgs := []string{"--disableexcludes=kubernetes", "install"}
	for _, n := range names {
		v := want[n]
		if i := strings.LastIndexByte(v, '-'); i > 0 {
			v = v[:i] // RPM releases differ from the deb revision; pin the upstream version
		}
		pkgs = append(pkgs, n+"-"+v)
	}
	if _, err := h.Exec(ctx, ssh.Cmd{Args: install.DNF(s, pm, pkgs...), Idempotent: true}); err != nil {
		return fmt.Errorf("install Kubernetes packages: %w", err)
	}
	return nil
}
