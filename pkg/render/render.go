// Package render assembles every file the installer produces for a cluster, per host and for the
// cluster itself, from one list of renderers, and writes them in the layout of `installer render`
// (DESIGN.md §2):
//
//	DIR/hosts/<host>/kubeadm.yaml          kubeadm's documents for the host
//	DIR/hosts/<host>/rootfs/<abs path>     every other file written on the host, at its real path
//	DIR/cluster/<path>                     what is applied to the cluster (cni.yaml, ccm.yaml, addons/)
//
// To add output, write a Renderer and add it to Renderers: it receives the same Input as every
// other and adds manifests.Files to the Output. The renderers it calls (kubeadm.File,
// manifests.RenderHostFiles, manifests.ClusterFiles, pki.Bundle.ControlPlaneFiles) are the ones the
// phases upload from, so what render shows is what create writes, the package repository's sources
// list or .repo file and key file included, as create first writes it: kube-vip on the first
// control plane reads super-admin.conf until init is done, and create writes its pod again with
// admin.conf then. Not shown, because they are not rendered files: what a host downloads itself
// (the binaries, the repository's own signing key when the spec names no key file), binaries
// copied from a bundle, and kubeadm init's marker (constants.InitMarker). upgrade's
// UpgradeConfiguration (kubeadm.UpgradeFile) belongs to upgrade, not create.
package render

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
)

// Input is what every renderer reads.
type Input struct {
	// Cluster is the defaulted, validated spec.
	Cluster *v1alpha1.Cluster
	// Facts per host name (facts.Assumed for offline rendering).
	Facts map[string]facts.Host
	// Token is the bootstrap token of this run; CACertHashes pin the cluster CA (pki.DiscoveryHash).
	Token        string
	CACertHashes []string
	// Inputs are the manifests' inputs: local file contents, fetched manifests, stable secrets.
	Inputs manifests.Inputs
	// PKI is the cluster PKI uploaded to control planes (nil: not rendered).
	PKI *pki.Bundle
}

// Output collects the rendered files.
type Output struct {
	// Kubeadm is each host's kubeadm documents, by host name (written as hosts/<host>/kubeadm.yaml;
	// uploaded to kubeadm.ConfigPath).
	Kubeadm map[string]manifests.File
	// Hosts is every other file per host name, Path absolute on the host (hosts/<host>/rootfs/<Path>).
	Hosts map[string][]manifests.File
	// Cluster is what is applied to the cluster, Path relative to cluster/.
	Cluster []manifests.File
}

// AddHostFiles appends files for one host.
func (o *Output) AddHostFiles(host string, files ...manifests.File) {
	o.Hosts[host] = append(o.Hosts[host], files...)
}

// Renderer adds its files for the cluster in to out.
type Renderer func(in Input, out *Output) error

// Renderers is the one list of what the installer renders. Add a line to add output.
func Renderers() []Renderer {
	return []Renderer{
		Kubeadm,
		HostManifests,
		ControlPlanePKI,
		ClusterManifests,
	}
}

// HostManifests adds every host's files from pkg/manifests, every group of them (sysctls,
// containerd, the package repository, the kubelet's files, the HA endpoint's static pods on control
// planes), as create writes them before kubeadm init.
func HostManifests(in Input, out *Output) error {
	spec := &in.Cluster.Spec
	for _, h := range spec.Hosts {
		files, err := manifests.RenderHostFiles(manifests.HostInput{Spec: spec, Host: h, Facts: in.Facts[h.Name], Inputs: in.Inputs})
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		out.AddHostFiles(h.Name, files.All()...)
	}
	return nil
}

// ControlPlanePKI adds the CA and service-account files every control plane gets (keys masked).
func ControlPlanePKI(in Input, out *Output) error {
	if in.PKI == nil {
		return nil
	}
	for _, h := range in.Cluster.Spec.ControlPlanes() {
		out.AddHostFiles(h.Name, in.PKI.ControlPlaneFiles()...)
	}
	return nil
}

// ClusterManifests adds what is applied to the cluster: cni.yaml, ccm.yaml, addons/.
func ClusterManifests(in Input, out *Output) error {
	files, err := manifests.ClusterFiles(&in.Cluster.Spec, in.Inputs)
	if err != nil {
		return err
	}
	out.Cluster = append(out.Cluster, files...)
	return nil
}

// Render runs every renderer and returns the files sorted by path.
func Render(in Input) (*Output, error) {
	if in.Cluster == nil {
		return nil, errors.New("render: no spec")
	}
	out := &Output{Kubeadm: map[string]manifests.File{}, Hosts: map[string][]manifests.File{}}
	for _, r := range Renderers() {
		if err := r(in, out); err != nil {
			return nil, err
		}
	}
	for h := range out.Hosts {
		manifests.SortFiles(out.Hosts[h])
	}
	manifests.SortFiles(out.Cluster)
	return out, nil
}

// Kubeadm renders each host's kubeadm documents.
func Kubeadm(in Input, out *Output) error {
	spec := &in.Cluster.Spec
	for _, h := range spec.Hosts {
		f, err := kubeadm.File(kubeadm.Input{Spec: spec, Host: h, Facts: in.Facts[h.Name], Token: in.Token, CACertHashes: in.CACertHashes})
		if err != nil {
			return fmt.Errorf("render: host %s: %w", h.Name, err)
		}
		out.Kubeadm[h.Name] = f
	}
	return nil
}

// Write puts out under dir in the render layout, with what people may read (File.Display: secrets
// masked) and each file's mode; sensitive files are never more open than 0600. Existing files are
// replaced; nothing else in dir is touched.
func Write(dir string, out *Output) error {
	var errs []error
	write := func(rel string, f manifests.File) {
		if err := writeFile(dir, rel, f); err != nil {
			errs = append(errs, err)
		}
	}
	for host, f := range out.Kubeadm {
		if !oneElement(host) {
			errs = append(errs, fmt.Errorf("render: %q is not a host name", host))
			continue
		}
		write(path.Join("hosts", host, "kubeadm.yaml"), f)
	}
	for host, files := range out.Hosts {
		if !oneElement(host) {
			errs = append(errs, fmt.Errorf("render: %q is not a host name", host))
			continue
		}
		for _, f := range files {
			if !path.IsAbs(f.Path) {
				errs = append(errs, fmt.Errorf("render: host %s: %s is not an absolute path", host, f.Path))
				continue
			}
			// Clean first: an absolute path cannot climb above its root, so ".." stays inside rootfs/.
			write(path.Join("hosts", host, "rootfs", path.Clean(f.Path)), f)
		}
	}
	for _, f := range out.Cluster {
		clean := path.Clean(f.Path)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			errs = append(errs, fmt.Errorf("render: cluster file %s leaves cluster/", f.Path))
			continue
		}
		write(path.Join("cluster", clean), f)
	}
	return errors.Join(errs...)
}

// oneElement: a host name is one path element, so it cannot climb out of hosts/.
func oneElement(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}

func writeFile(dir, rel string, f manifests.File) error {
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	if f.Sensitive {
		mode &= 0o600
	}
	// Remove first: WriteFile keeps an existing file's (possibly wider) mode.
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("render: %w", err)
	}
	if err := os.WriteFile(dst, f.Display(), mode); err != nil {
		return fmt.Errorf("render: %w", err)
	}
	return nil
}
