package phases

import (
	"context"
	"fmt"
	"strings"

	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// Runtime installs containerd from the distribution's packages when it is missing, writes its
// configuration and registry mirrors, and restarts it only when a file changed.
type Runtime struct{}

func (Runtime) Name() string { return "runtime" }

func (Runtime) Run(ctx context.Context, r *Run) error {
	s := &r.Cluster.Spec
	return ForEachHost(ctx, r.Targets(), r.Concurrency, func(ctx context.Context, h *Host) error {
		if h.Facts.ContainerdVersion == "" {
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
		return ensureService(ctx, h, "containerd", changed > 0)
	})
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
		f := strings.Fields(string(res.Stdout))
		if len(f) < 3 {
			return fmt.Errorf("containerd --version printed %q", res.Stdout)
		}
		v := strings.TrimPrefix(f[2], "v")
		if i := strings.IndexAny(v, "~+-"); i >= 0 {
			v = v[:i]
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
