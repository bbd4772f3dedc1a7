package manifests

import (
	"fmt"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/install"
)

// Paths of the Kubernetes package repository's files on a host (install.source package).
const (
	AptKeyringPath = "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
	// AptBinaryKeyringPath takes a binary key file: apt reads .asc keyrings as armored text only.
	AptBinaryKeyringPath = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
	AptSourcesPath       = "/etc/apt/sources.list.d/kubernetes.list"
	RPMKeyPath           = "/etc/pki/rpm-gpg/kubernetes.asc"
	RPMRepoPath          = "/etc/yum.repos.d/kubernetes.repo"
)

// RemoteFile is a file a host downloads itself instead of receiving it from the installer, so
// `render` cannot show it.
type RemoteFile struct {
	URL  string
	Path string
}

// repository is the package repository of the spec's minor as one host sees it.
type repository struct {
	minor string
	url   string // <packageRepository>/v1.35/deb/ (or /rpm/)
	rpm   bool
	// keyPath is where the signing key goes; key is the spec's key file, fetch the repository's
	// own key when the spec names none (exactly one of them is set).
	keyPath string
	key     []byte
	fetch   *RemoteFile
}

// packageRepository works out the repository for the host's package manager. The signing key is
// the spec's key file (install.packageRepositoryKeyFile, from Inputs), else the key the repository
// publishes beside its packages.
func packageRepository(spec *v1alpha1.ClusterSpec, f facts.Host, in Inputs) (repository, error) {
	var r repository
	switch pm := f.OS.PackageManager; pm {
	case "apt":
	case "dnf", "yum":
		r.rpm = true
	default:
		return repository{}, fmt.Errorf("no supported package manager (found %q)", pm)
	}
	rel, err := Release(spec)
	if err != nil {
		return repository{}, err
	}
	r.minor = rel.Minor()
	if r.url, err = install.RepositoryURL(spec, f.OS.PackageManager); err != nil {
		return repository{}, err
	}
	if p := spec.Install.PackageRepositoryKeyFile; p != "" {
		if r.key, err = in.file(p); err != nil {
			return repository{}, fmt.Errorf("spec.install.packageRepositoryKeyFile: %w", err)
		}
	}
	switch {
	case r.rpm:
		r.keyPath = RPMKeyPath
	case r.key != nil && !v1alpha1.ArmoredOpenPGPKey(r.key):
		r.keyPath = AptBinaryKeyringPath
	default:
		r.keyPath = AptKeyringPath
	}
	if r.key == nil {
		published := "Release.key"
		if r.rpm {
			published = "repodata/repomd.xml.key"
		}
		r.fetch = &RemoteFile{URL: r.url + published, Path: r.keyPath}
	}
	return r, nil
}

type repositoryData struct {
	Minor, URL, KeyPath, Exclude, Proxy string
}

// repositoryFiles renders the Kubernetes package repository for install.source package: apt's
// sources list naming the keyring with signed-by, or the RPM .repo file whose exclude= keeps a
// routine `dnf upgrade` from moving the cluster (the installer lifts it per call), plus the signing
// key when the spec names a key file. Without one the host fetches the repository's own key: the
// returned RemoteFile.
func repositoryFiles(spec *v1alpha1.ClusterSpec, f facts.Host, in Inputs) ([]File, *RemoteFile, error) {
	if spec.Install.Source != v1alpha1.InstallPackage {
		return nil, nil, nil
	}
	r, err := packageRepository(spec, f, in)
	if err != nil {
		return nil, nil, err
	}
	var files []File
	if r.key != nil {
		files = append(files, File{Path: r.keyPath, Mode: 0o644, Content: r.key})
	}
	d := repositoryData{Minor: r.minor, URL: r.url, KeyPath: r.keyPath}
	name, path := "kubernetes.list.tmpl", AptSourcesPath
	if r.rpm {
		name, path = "kubernetes.repo.tmpl", RPMRepoPath
		d.Exclude = strings.Join(install.KubePackages, " ")
		d.Proxy = spec.Install.PackageProxy
	}
	b, err := render(name, d)
	if err != nil {
		return nil, nil, err
	}
	files = append(files, File{Path: path, Mode: 0o644, Content: b})
	SortFiles(files)
	return files, r.fetch, nil
}
