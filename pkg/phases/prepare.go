package phases

import (
	"context"
	"fmt"
	"strings"

	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// Prepare turns swap off (and out of /etc/fstab), loads the kernel modules and sets the sysctls
// Kubernetes needs. Each step runs only when the host is not already in that state.
type Prepare struct{}

func (Prepare) Name() string { return "prepare" }

// The sysctls a node needs, as `sysctl -n` prints them in this order.
var nodeSysctls = []string{"net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"}

func (Prepare) Run(ctx context.Context, r *Run) error {
	s := &r.Cluster.Spec
	return ForEachHost(ctx, r.Targets(), r.Concurrency, func(ctx context.Context, h *Host) error {
		if h.Facts.SwapEnabled {
			if _, err := h.Exec(ctx, ssh.Cmd{Args: scripts.SwapOff.Args()}); err != nil {
				return fmt.Errorf("turn swap off: %w", err)
			}
		}
		files, err := hostFiles(h, s, r.Inputs, h.Facts.AdminConfPresent)
		if err != nil {
			return err
		}
		if _, err := h.UploadAll(ctx, files.Node); err != nil {
			return err
		}
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.MissingModules.Args()})
		if err != nil {
			return fmt.Errorf("check kernel modules: %w", err)
		}
		if mods := strings.Fields(string(res.Stdout)); len(mods) > 0 {
			if _, err := h.Exec(ctx, ssh.Cmd{Args: append([]string{"modprobe", "-a"}, mods...)}); err != nil {
				return fmt.Errorf("load kernel modules %s: %w", strings.Join(mods, ", "), err)
			}
		}
		res, err = h.Query(ctx, ssh.Cmd{Args: append([]string{"sysctl", "-n"}, nodeSysctls...)})
		if err != nil || strings.Join(strings.Fields(string(res.Stdout)), " ") != "1 1 1" {
			// Apply only the installer's own file: `sysctl --system` would also apply the
			// distribution's kernel-wide defaults, which are not ours to change.
			for _, f := range files.Node {
				if strings.HasPrefix(f.Path, "/etc/sysctl.d/") {
					if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"sysctl", "-q", "-p", f.Path}}); err != nil {
						return fmt.Errorf("apply %s: %w", f.Path, err)
					}
				}
			}
		}
		return nil
	})
}
