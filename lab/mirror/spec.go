package mirror

import (
	"fmt"
	"os"
	"path/filepath"

	"installer.dev/installer/lab/debrepo"
	"installer.dev/installer/lab/images"
	"installer.dev/installer/lab/labspec"
)

// Registries are the registries whose images the lab registry serves under their own paths.
func Registries() []string {
	return []string{"registry.k8s.io", "docker.io", "ghcr.io", "quay.io"}
}

// AptKeyName is the file name of the repository key a lab keeps beside its spec.
const AptKeyName = "kubernetes-apt-key.asc"

// PinsName is the file name of the SHA-256 pins of the mirror's files a lab keeps beside its spec
// (WritePins writes it; the spec names it in install.checksumsFile).
const PinsName = "download-pins.sha256"

// WritePins writes the pins of c's files to path.
func WritePins(path string, c *Content) error {
	if err := os.WriteFile(path, c.Pins.Format(), 0o644); err != nil {
		return fmt.Errorf("mirror: pins: %w", err)
	}
	return nil
}

// SpecMirror is what a lab spec says of a mirror serving at url (http://172.30.0.1:5000): binary and
// artifact mirrors, registry mirrors, the lab CCM of kubernetesVersion, and the apt repositories'
// base URL with their signing key, and the pins of the files (PinsName in dir, which the mirror's
// starter wrote with WritePins). The public key is copied from the cache into dir (the lab's own
// directory), so the spec names a file of the lab and not of a cache that may be cleaned.
func SpecMirror(url, kubernetesVersion, cacheDir, dir string) (*labspec.Mirror, error) {
	pinsFile := filepath.Join(dir, PinsName)
	if _, err := os.Stat(pinsFile); err != nil {
		return nil, fmt.Errorf("mirror: pins of the mirror's files: %w", err)
	}
	pub, err := os.ReadFile(debrepo.PublicKeyFile(cacheDir))
	if err != nil {
		return nil, fmt.Errorf("mirror: apt repository key: %w", err)
	}
	keyFile := filepath.Join(dir, AptKeyName)
	if err := os.WriteFile(keyFile, pub, 0o644); err != nil {
		return nil, fmt.Errorf("mirror: apt repository key: %w", err)
	}
	m := &labspec.Mirror{BinaryMirror: url, ArtifactMirror: url, Registries: map[string][]string{},
		CCMImage: images.CCMImage(kubernetesVersion), CCMArgs: []string{"--cloud-provider=lab"},
		PackageRepository: url + debrepo.BasePath, PackageRepositoryKeyFile: keyFile, ChecksumsFile: pinsFile}
	for _, r := range Registries() {
		m.Registries[r] = []string{url}
	}
	return m, nil
}
