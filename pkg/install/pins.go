package install

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/pins"
	"installer.dev/installer/pkg/versions"
)

// BuiltinPins is the table of digests this build of the installer carries (pkg/versions/checksums.txt,
// written by hack/update-checksums from upstream's release files).
func BuiltinPins() (pins.Table, error) {
	p, err := pins.Parse(versions.ChecksumTable())
	if err != nil {
		return nil, fmt.Errorf("built-in checksum table: %w", err)
	}
	return p, nil
}

// Checksum is what a downloaded file is verified against: a pinned Digest or, for a file on
// upstream's own servers that nothing pins, the checksum file upstream publishes beside it
// (PublishedAt). A mirror's own checksum files are never used: whoever controls a mirror could
// serve a matching pair.
type Checksum struct {
	Digest      string
	PublishedAt string
}

// arg is the checksum as download.sh takes it: "sha256:<hex>" or the URL of the published file.
func (c Checksum) arg() string {
	if c.Digest != "" {
		return "sha256:" + c.Digest
	}
	return c.PublishedAt
}

// Verifier decides the checksum of every file a spec downloads: the user's pins
// (install.checksumsFile) first, then the built-in ones.
type Verifier struct {
	spec    *v1alpha1.ClusterSpec
	user    pins.Table
	builtin pins.Table
}

// NewVerifier returns the verifier of spec with the user's pins (nil for none).
func NewVerifier(spec *v1alpha1.ClusterSpec, user pins.Table) (*Verifier, error) {
	builtin, err := BuiltinPins()
	if err != nil {
		return nil, err
	}
	return &Verifier{spec: spec, user: user, builtin: builtin}, nil
}

// ReleasePath is url's path in upstream's layout: what follows the binary or artifact mirror (the
// longer one when both match, as https://m and https://m/github do).
func ReleasePath(s *v1alpha1.ClusterSpec, url string) string {
	best := url
	for _, base := range []string{s.Install.BinaryMirror, s.Install.ArtifactMirror} {
		if base == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(url, strings.TrimRight(base, "/")+"/"); ok && len(rest) < len(best) {
			best = rest
		}
	}
	return best
}

// pinned is the digest pinned for a path in upstream's layout, the user's before the built-in one.
func (v *Verifier) pinned(p string) (string, bool) {
	if d, ok := v.user[p]; ok {
		return d, true
	}
	d, ok := v.builtin[p]
	return d, ok
}

// For returns the checksum the file at url is verified against, or an error naming what to pin.
func (v *Verifier) For(url string) (Checksum, error) {
	p := ReleasePath(v.spec, url)
	if d, ok := v.pinned(p); ok {
		return Checksum{Digest: d}, nil
	}
	if v.fromUpstream(url) {
		return Checksum{PublishedAt: ChecksumURL(url)}, nil
	}
	return Checksum{}, UnpinnedError([]string{p})
}

// fromUpstream reports whether url is on upstream's own servers (the default mirrors): their
// published checksum files are the release's own.
func (v *Verifier) fromUpstream(url string) bool {
	for _, base := range []string{v1alpha1.DefaultBinaryMirror, v1alpha1.DefaultArtifactMirror} {
		if strings.HasPrefix(url, base+"/") {
			return true
		}
	}
	return false
}

// Downloads lists the URL of every file a host of arch gets from the spec's mirrors or bundle:
// kubeadm, kubelet and kubectl, crictl and the CNI plugins unless they come as packages, and
// containerd with runc unless containerd comes as a package.
func Downloads(s *v1alpha1.ClusterSpec, arch string) ([]string, error) {
	var urls []string
	if s.Install.Source != v1alpha1.InstallPackage {
		rel, err := Release(s)
		if err != nil {
			return nil, err
		}
		for _, t := range KubeTools(s, arch) {
			urls = append(urls, t.URL)
		}
		urls = append(urls, CrictlURL(s.Install.ArtifactMirror, rel.CRITools, arch),
			CNIPluginsURL(s.Install.ArtifactMirror, rel.CNIPlugins, arch))
	}
	if s.ContainerRuntime.Containerd.Source == v1alpha1.InstallBinary {
		urls = append(urls, RuncURL(s.Install.ArtifactMirror, versions.Containerd().Runc, arch),
			ContainerdURL(s.Install.ArtifactMirror, s.ContainerRuntime.Containerd.Version, arch))
	}
	return urls, nil
}

// Unverifiable lists, for hosts of the given architectures, the path (in upstream's layout) of every
// file the spec would download that has no checksum the installer trusts (see For). A bundle's own
// checksum files are the user's local files and count as trusted (a pin still overrides them).
func (v *Verifier) Unverifiable(archs []string) ([]string, error) {
	if v.spec.Install.Source == v1alpha1.InstallBundle {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, arch := range archs {
		urls, err := Downloads(v.spec, arch)
		if err != nil {
			return nil, err
		}
		for _, u := range urls {
			if seen[u] {
				continue
			}
			seen[u] = true
			if _, err := v.For(u); err != nil {
				out = append(out, ReleasePath(v.spec, u))
			}
		}
	}
	return out, nil
}

// UnpinnedError explains paths Unverifiable found, with the fix.
func UnpinnedError(paths []string) error {
	const why = "the checksum a mirror serves is not trusted (whoever controls the mirror could serve a matching pair); add \"<sha256>  <path>\" lines from upstream's release files to install.checksumsFile (hack/update-checksums writes such a file)"
	if len(paths) == 1 {
		return fmt.Errorf("no pinned SHA-256 for %s, and %s", paths[0], why)
	}
	return fmt.Errorf("%d downloads have no pinned SHA-256, and %s:\n  %s", len(paths), why, strings.Join(paths, "\n  "))
}

// BundleFile reads the file of the spec's local bundle that stands for url (the bundle is laid out
// like the mirrors) and returns it with its verified digest: the pinned one when there is a pin
// (a bundle file that differs is refused here, before anything is sent), else the one the bundle's
// own checksum file (ChecksumURL) gives, which is the user's local file as much as the bundle is.
func (v *Verifier) BundleFile(url string) (data []byte, digest string, err error) {
	rel := ReleasePath(v.spec, url)
	local := filepath.Join(v.spec.Install.BundleDir, filepath.FromSlash(rel))
	data, err = os.ReadFile(local)
	if err != nil {
		return nil, "", fmt.Errorf("bundle: %w", err)
	}
	if want, ok := v.pinned(rel); ok {
		if got := digestOf(data); got != want {
			return nil, "", fmt.Errorf("bundle: %s has SHA-256 %s, but %s is pinned to %s", local, got, rel, want)
		}
		return data, want, nil
	}
	sumsPath := filepath.Join(v.spec.Install.BundleDir, filepath.FromSlash(ChecksumURL(rel)))
	sums, err := os.ReadFile(sumsPath)
	if err != nil {
		return nil, "", fmt.Errorf("bundle: %w", err)
	}
	digest, err = PickChecksum(sums, filepath.Base(local))
	if err != nil {
		return nil, "", fmt.Errorf("bundle: %s: %w", sumsPath, err)
	}
	return data, digest, nil
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
