package manifests

import (
	"fmt"
	"sort"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/versions"
)

// Release returns the pinned release a (defaulted) spec installs.
func Release(spec *v1alpha1.ClusterSpec) (versions.Release, error) {
	r, ok := versions.Lookup(spec.KubernetesVersion)
	if !ok {
		return versions.Release{}, fmt.Errorf("kubernetes %q is not supported (supported: %s)", spec.KubernetesVersion, versions.SupportedList())
	}
	return r, nil
}

// ImageName is the one rule every renderer names an image by: the table's default; for kubeadm's
// own images the registry replaced by images.repository exactly as kubeadm does it; then
// images.overrides. Registry mirrors never change a name (containerd's hosts.toml redirects pulls).
func ImageName(spec *v1alpha1.ClusterSpec, component string) (string, error) {
	r, err := Release(spec)
	if err != nil {
		return "", err
	}
	img, err := ImageFor(r, component)
	if err != nil {
		return "", err
	}
	name := img.Name
	if img.Kubeadm {
		name = kubeadmRepositoryName(img, spec.Images.Repository)
	}
	return Override(spec, name), nil
}

// UnusedOverrides lists the images.overrides keys (sorted) that name no image the spec's release
// could render, as ImageName names it before overrides: such an override is silently ignored, most
// often because a version bump changed the tag it was written for.
func UnusedOverrides(spec *v1alpha1.ClusterSpec) ([]string, error) {
	if len(spec.Images.Overrides) == 0 {
		return nil, nil
	}
	r, err := Release(spec)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{spec.CloudProvider.Image: true}
	for _, img := range AllImages(r) {
		name := img.Name
		if img.Kubeadm {
			name = kubeadmRepositoryName(img, spec.Images.Repository)
		}
		names[name] = true
	}
	var unused []string
	for k := range spec.Images.Overrides {
		if !names[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	return unused, nil
}

// Override applies images.overrides to a reference (unchanged when no override names it).
func Override(spec *v1alpha1.ClusterSpec, name string) string {
	if to, ok := spec.Images.Overrides[name]; ok {
		return to
	}
	return name
}

// kubeadmRepositoryName mirrors kubeadm's naming under a custom imageRepository: the image keeps its
// last path element, and CoreDNS loses its "coredns/" sub-path (kubeadm adds it back only for the
// default registry).
func kubeadmRepositoryName(img Image, repository string) string {
	if repository == "" || repository == v1alpha1.DefaultImageRepository {
		return img.Name
	}
	base := img.Repository()
	base = base[strings.LastIndex(base, "/")+1:]
	return strings.TrimSuffix(repository, "/") + "/" + base + ":" + img.Tag()
}
