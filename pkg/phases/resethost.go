package phases

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// leftover is one thing a cluster left on a host, as the reset scripts print it (pkg/scripts'
// reset-host.sh: the kubelet, pods, mounts, files, links and routes; reset-firewall.sh: only the
// firewall state of kube-proxy, the kubelet and the CNI).
type leftover struct{ kind, item string }

func (l leftover) String() string { return l.kind + " " + l.item }

// parseLeftovers reads the scripts' "<kind> <item>" lines. Lines of kind "have" and "no-nft" are
// not leftovers: they say what the host has.
func parseLeftovers(out []byte) (items []leftover, have map[string]bool) {
	have = map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		kind, item, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch kind {
		case "":
		case "have":
			have[item] = true
		case "no-nft":
			have["no-nft"] = true
		default:
			items = append(items, leftover{kind, item})
		}
	}
	return items, have
}

// needsKubeadmReset: kubeadm's own state is present (its directories, pods, volume mounts).
func needsKubeadmReset(items []leftover) bool {
	for _, l := range items {
		switch {
		case l.kind == "pods", l.kind == "mount":
			return true
		case l.kind == "path" && (strings.HasPrefix(l.item, constants.KubernetesDir) || strings.HasPrefix(l.item, constants.KubeletDir) || strings.HasPrefix(l.item, constants.EtcdDataDir)):
			return true
		}
	}
	return false
}

// resetArgs runs reset-host.sh on host h in mode "list" or "remove".
func (h *Host) resetArgs(s *v1alpha1.ClusterSpec, mode string) []string {
	args := []string{mode, s.Networking.PodSubnet}
	if h.Spec.Role == v1alpha1.RoleControlPlane {
		// The HA endpoint's configuration lives outside /etc/kubernetes; keepalived's holds the VRRP
		// password. Only control planes ever got it, and the upgrade's runtime directories for it.
		args = append(args, manifests.KeepalivedConfigPath, manifests.KeepalivedCheckPath, manifests.HAProxyConfigPath,
			manifests.HAProxyAdminDir, manifests.KeepalivedMaintenanceDir, manifests.HAProxyOutMarker)
	}
	return scripts.ResetHost.Args(args...)
}

var firewallList = ssh.Cmd{Args: scripts.ResetFirewall.Args("list")}

// inventory lists what the cluster left on the host (read-only; runs in dry runs too).
func (h *Host) inventory(ctx context.Context, s *v1alpha1.ClusterSpec) (items []leftover, have map[string]bool, err error) {
	res, err := h.Query(ctx, ssh.Cmd{Args: h.resetArgs(s, "list")})
	if err != nil {
		return nil, nil, fmt.Errorf("list what is left: %w", err)
	}
	items, have = parseLeftovers(res.Stdout)
	res, err = h.Query(ctx, firewallList)
	if err != nil {
		return nil, nil, fmt.Errorf("list firewall rules: %w", err)
	}
	fw, fwHave := parseLeftovers(res.Stdout)
	for k := range fwHave {
		have[k] = true
	}
	return append(items, fw...), have, nil
}

// resetHost runs kubeadm reset when kubeadm's state is present, removes everything else the cluster
// left, and checks that nothing is left. A host with nothing left is not changed at all.
func (h *Host) resetHost(ctx context.Context, s *v1alpha1.ClusterSpec, log *slog.Logger) error {
	items, have, err := h.inventory(ctx, s)
	if err != nil {
		return err
	}
	if have["no-nft"] && s.KubeProxy.Mode == "nftables" {
		log.Warn("nft is not installed: kube-proxy's nftables tables cannot be checked or removed", "host", h.Name())
	}
	if len(items) == 0 {
		return nil
	}
	if have["kubeadm"] && needsKubeadmReset(items) {
		if _, err := h.Exec(ctx, kubeadmReset); err != nil {
			return fmt.Errorf("kubeadm reset: %w", err)
		}
	}
	var fw, rest []string
	for _, l := range items {
		if isFirewall(l.kind) {
			fw = append(fw, "remove "+l.String())
		} else {
			rest = append(rest, "remove "+l.String())
		}
	}
	if len(rest) > 0 {
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: h.resetArgs(s, "remove")}, rest); err != nil {
			return fmt.Errorf("remove what kubeadm reset leaves: %w", err)
		}
	}
	if len(fw) > 0 {
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.ResetFirewall.Args("remove")}, fw); err != nil {
			return fmt.Errorf("remove kube-proxy's and the CNI's firewall rules: %w", err)
		}
	}
	return h.fx.Observe(ctx, "nothing left on "+h.Name(), func(ctx context.Context) error {
		left, _, err := h.inventory(ctx, s)
		if err != nil {
			return err
		}
		if len(left) > 0 {
			names := make([]string, 0, len(left))
			for _, l := range left {
				names = append(names, l.String())
			}
			sort.Strings(names)
			return fmt.Errorf("still present after the reset: %s", strings.Join(names, "; "))
		}
		return nil
	})
}

func isFirewall(kind string) bool { return kind == "jump" || kind == "chain" || kind == "nft-table" }

// kubeadmReset names containerd's socket so kubeadm never has to guess the runtime.
var kubeadmReset = ssh.Cmd{Args: []string{"kubeadm", "reset", "-f", "--cri-socket", kubeadm.CRISocket}}
