package phases

import (
	"context"
	"fmt"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/versions"
)

// Runtime installs containerd (the pinned release binaries and runc, or the distribution's
// packages) when it is missing, writes its unit, configuration and registry mirrors, and restarts it
// only when a file changed. It never replaces the containerd of a host that is already a node: the
// upgrade does that after draining it.
type Runtime struct{}

func (Runtime) Name() string { return "runtime" }

func (Runtime) Run(ctx context.Context, r *Run) error {
	s := &r.Cluster.Spec
	return ForEachHost(ctx, r.Targets(), r.Concurrency, func(ctx context.Context, h *Host) error {
		var err error
		switch s.ContainerRuntime.Containerd.Source {
		case v1alpha1.InstallBinary:
			err = installContainerdRelease(ctx, r, h)
		default:
			err = installContainerdPackages(ctx, h, s)
		}
		if err != nil {
			return err
		}
		// Rendered now: containerd's config format follows the version just installed.
		files, err := hostFiles(h, s, r.Inputs, h.Facts.AdminConfPresent)
		if err != nil {
			return err
		}
		changed, err := h.UploadAll(ctx, files.Runtime)
		if err != nil {
			return err
		}
		if changed > 0 {
			// A new or changed unit or proxy drop-in is read only after a reload.
			if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "daemon-reload"}}); err != nil {
				return fmt.Errorf("systemctl daemon-reload: %w", err)
			}
		}
		return ensureService(ctx, h, "containerd", changed > 0)
	})
}

// installContainerdPackages installs the distribution's containerd when none is there.
func installContainerdPackages(ctx context.Context, h *Host, s *v1alpha1.ClusterSpec) error {
	if h.Facts.ContainerdVersion != "" {
		return checkContainerdVersion(h, s, "set spec.containerRuntime.containerd.source: binary (containerd "+versions.Containerd().Containerd+"), or upgrade the host's containerd package")
	}
	pm := h.Facts.OS.PackageManager
	refresh, err := install.PackageRefresh(s, pm)
	if err != nil {
		return err
	}
	if _, err := h.Exec(ctx, ssh.Cmd{Args: refresh, Idempotent: true}); err != nil {
		return fmt.Errorf("refresh package index: %w", err)
	}
	argv, err := install.PackageInstall(s, pm, install.ContainerdPackages(s, pm)...)
	if err != nil {
		return err
	}
	if _, err := h.Exec(ctx, ssh.Cmd{Args: argv, Idempotent: true}); err != nil {
		return fmt.Errorf("install containerd: %w", err)
	}
	if err := h.refreshContainerdVersion(ctx); err != nil {
		return err
	}
	return checkContainerdVersion(h, s, "set spec.containerRuntime.containerd.source: binary (containerd "+versions.Containerd().Containerd+"), or install a newer containerd package")
}

// installContainerdRelease puts the spec's containerd release and the runc pinned with it on a host
// that is not a node yet (or already runs them). A node with another containerd keeps it: replacing
// the runtime under running pods is the upgrade's job, after a drain.
func installContainerdRelease(ctx context.Context, r *Run, h *Host) error {
	s := &r.Cluster.Spec
	want := versions.Containerd()
	wantContainerd := strings.TrimPrefix(s.ContainerRuntime.Containerd.Version, "v")
	have := h.now().ContainerdVersion
	if have != "" && have != wantContainerd && h.Facts.KubeletConfPresent {
		if err := checkContainerdVersion(h, s, "run installer upgrade: it replaces containerd node by node, drained"); err != nil {
			return err
		}
		r.Log.Warn("this node runs another containerd; it is kept (run installer upgrade to replace it node by node, drained)",
			"host", h.Name(), "installed", have, "spec", s.ContainerRuntime.Containerd.Version)
		return nil
	}
	d, err := newDownloader(s, r.Inputs)
	if err != nil {
		return err
	}
	return replaceContainerd(ctx, h, d, want.Runc)
}

// replaceContainerd installs the containerd release of the spec and runc at runcVersion where the
// host has other versions, from the artifact mirror or the bundle. The running containerd, if any,
// goes on until the caller restarts it.
func replaceContainerd(ctx context.Context, h *Host, d downloader, runcVersion string) error {
	s, arch := d.spec, h.Facts.Arch
	version := s.ContainerRuntime.Containerd.Version
	if h.Facts.RuncVersion != strings.TrimPrefix(runcVersion, "v") {
		url := install.RuncURL(s.Install.ArtifactMirror, runcVersion, arch)
		if err := d.binary(ctx, h, url, install.RuncPath); err != nil {
			return fmt.Errorf("install runc %s: %w", runcVersion, err)
		}
	}
	if h.now().ContainerdVersion == strings.TrimPrefix(version, "v") {
		return nil
	}
	url := install.ContainerdURL(s.Install.ArtifactMirror, version, arch)
	if err := d.archive(ctx, h, url, install.ContainerdPrefix, version, ""); err != nil {
		return fmt.Errorf("install containerd %s: %w", version, err)
	}
	// The release asked for is what the host now has (the files that follow are rendered for it,
	// in a dry run too); reading the version back checks it.
	h.record(func(c *hostChanges) { c.containerd = strings.TrimPrefix(version, "v") })
	return h.refreshContainerdVersion(ctx)
}

// checkContainerdVersion refuses a containerd older than the Kubernetes release needs (a
// distribution package, or a node the upgrade has not reached yet).
func checkContainerdVersion(h *Host, s *v1alpha1.ClusterSpec, fix string) error {
	have := h.now().ContainerdVersion
	rel, err := install.Release(s)
	if err != nil || have == "" {
		return err
	}
	if !versions.ContainerdAtLeast(have, rel.MinContainerd) {
		return fmt.Errorf("containerd %s on %s is too old for Kubernetes %s (needs %s or newer): %s",
			have, h.Name(), rel.Kubernetes, rel.MinContainerd, fix)
	}
	return nil
}

// refreshContainerdVersion re-reads containerd's version after installing it: the config format
// depends on it. A dry run installed nothing; the renderer then assumes the version the spec pins
// or a package install brings (manifests.ContainerdVersion).
func (h *Host) refreshContainerdVersion(ctx context.Context) error {
	return h.fx.Observe(ctx, "containerd's version on "+h.Name(), func(ctx context.Context) error {
		res, err := h.Query(ctx, ssh.Cmd{Args: []string{"containerd", "--version"}})
		if err != nil {
			return fmt.Errorf("containerd --version: %w", err)
		}
		v := facts.ParseContainerdVersion(string(res.Stdout))
		if v == "" {
			return fmt.Errorf("containerd --version printed %q", res.Stdout)
		}
		h.record(func(c *hostChanges) { c.containerd = v })
		return nil
	})
}

// ensureService enables and starts a unit, restarting it when its configuration changed.
func ensureService(ctx context.Context, h *Host, unit string, restart bool) error {
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.UnitState.Args(unit)})
	if err != nil {
		return fmt.Errorf("read the state of %s: %w", unit, err)
	}
	state := strings.Fields(string(res.Stdout))
	enabled := len(state) > 0 && state[0] == "enabled"
	active := len(state) > 1 && state[1] == "active"
	if !enabled {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "enable", unit}}); err != nil {
			return fmt.Errorf("enable %s: %w", unit, err)
		}
	}
	switch {
	case restart:
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "restart", unit}}); err != nil {
			return fmt.Errorf("restart %s: %w", unit, err)
		}
	case !active:
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "start", unit}}); err != nil {
			return fmt.Errorf("start %s: %w", unit, err)
		}
	}
	return nil
}
