package install

import (
	"fmt"
	"path"
	"strings"

	"installer.dev/installer/pkg/pins"
)

// ChecksumURL is where an upstream release publishes the SHA-256 of the file at url: dl.k8s.io,
// cri-tools and the CNI plugins a "<file>.sha256" beside it, containerd "<file>.sha256sum", runc one
// "runc.sha256sum" for all the files of a release. download.sh and bundles read it from there.
func ChecksumURL(url string) string {
	dir, name := path.Split(url)
	switch {
	case strings.HasPrefix(name, "containerd-") && strings.HasSuffix(name, ".tar.gz"):
		return url + ".sha256sum"
	case strings.HasPrefix(name, "runc."):
		return dir + "runc.sha256sum"
	}
	return url + ".sha256"
}

// PickChecksum reads a checksum file as download.sh does: the line naming the file ("<hex>  name" or
// "<hex> *name"), else a lone digest; the digest must be 64 lowercase hex characters.
func PickChecksum(data []byte, name string) (string, error) {
	lone := ""
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 1 && lone == "":
			lone = f[0]
		case len(f) >= 2 && strings.TrimPrefix(f[1], "*") == name:
			return checkDigest(f[0], name)
		}
	}
	if lone == "" {
		return "", fmt.Errorf("no checksum for %s", name)
	}
	return checkDigest(lone, name)
}

func checkDigest(d, name string) (string, error) {
	d = strings.ToLower(d)
	if !pins.ValidDigest(d) {
		return "", fmt.Errorf("checksum for %s: %q is not a SHA-256 digest", name, d)
	}
	return d, nil
}
