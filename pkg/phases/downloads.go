package phases

import (
	"context"
	"slices"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

// downloader puts files of upstream releases on hosts: from the spec's bundle over SSH, or fetched
// by the host from the mirrors. Either way the host checks every byte against the checksum the
// verifier trusts (a pin, never a mirror's own checksum file) before anything is installed.
type downloader struct {
	spec   *v1alpha1.ClusterSpec
	verify *install.Verifier
}

func newDownloader(s *v1alpha1.ClusterSpec, in manifests.Inputs) (downloader, error) {
	v, err := install.NewVerifier(s, in.Pins)
	if err != nil {
		return downloader{}, err
	}
	return downloader{spec: s, verify: v}, nil
}

// binary installs the file at url as dest, mode 0755.
func (d downloader) binary(ctx context.Context, h *Host, url, dest string) error {
	if d.spec.Install.Source == v1alpha1.InstallBundle {
		return d.fromBundle(ctx, h, url, func(sum string) []string { return install.BundleBinary(sum, dest) })
	}
	sum, err := d.verify.For(url)
	if err != nil {
		return err
	}
	_, err = h.Exec(ctx, ssh.Cmd{Args: install.DownloadBinary(url, sum, dest, install.Proxy(d.spec)), Idempotent: true})
	return err
}

// archive unpacks the .tar.gz at url into dir and, when marker is set, writes version into it.
func (d downloader) archive(ctx context.Context, h *Host, url, dir, version, marker string) error {
	if d.spec.Install.Source == v1alpha1.InstallBundle {
		return d.fromBundle(ctx, h, url, func(sum string) []string { return install.BundleArchive(sum, dir, version, marker) })
	}
	sum, err := d.verify.For(url)
	if err != nil {
		return err
	}
	_, err = h.Exec(ctx, ssh.Cmd{Args: install.DownloadArchive(url, sum, dir, version, marker, install.Proxy(d.spec)), Idempotent: true})
	return err
}

// fromBundle sends one file of the local bundle to the host over the stdin of argv(its verified
// SHA-256), which stages it in a root-only directory, checks and installs it.
func (d downloader) fromBundle(ctx context.Context, h *Host, url string, argv func(sha256 string) []string) error {
	data, sum, err := d.verify.BundleFile(url)
	if err != nil {
		return err
	}
	_, err = h.Exec(ctx, ssh.Cmd{Args: argv(sum), Stdin: data, Idempotent: true})
	return err
}

// checkDownloads refuses, before anything is changed, a run that would download to a target host
// a file with no checksum the installer trusts (install.UnpinnedError names every one).
func checkDownloads(r *Run) error {
	d, err := newDownloader(&r.Cluster.Spec, r.Inputs)
	if err != nil {
		return err
	}
	var archs []string
	for _, h := range r.Targets() {
		if !slices.Contains(archs, h.Facts.Arch) {
			archs = append(archs, h.Facts.Arch)
		}
	}
	paths, err := d.verify.Unverifiable(archs)
	if err != nil || len(paths) == 0 {
		return err
	}
	return install.UnpinnedError(paths)
}
