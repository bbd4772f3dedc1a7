package phases

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

// hostResetScript lists (mode "list") or removes (mode "remove") what a cluster leaves on a host
// besides the firewall: the kubelet's unit state, pods, mounts below /var/lib/kubelet, kubeadm's and
// the CNI's files, the CNI's links and routes into the pod network. It prints one "<kind> <item>"
// line per thing present (list) or removed (remove), so a second run prints nothing. Arguments: the
// mode, the pod subnets (comma-separated, may be empty), then extra files of the installer's own
// (the HA endpoint's configuration). Containerd, the binaries and the images stay: the host is
// meant to be reused by create cluster or join node.
const hostResetScript = `mode=$1 podnets=$2
shift 2
say() { printf '%s %s\n' "$1" "$2"; }
rm_mode() { [ "$mode" = remove ]; }
command -v kubeadm >/dev/null 2>&1 && say have kubeadm

# The kubelet: kubeadm reset only stops it; enabled, it would start again at boot.
en=$(systemctl is-enabled kubelet 2>/dev/null) act=$(systemctl is-active kubelet 2>/dev/null)
if [ "$en" = enabled ] || [ "$act" = active ] || [ "$act" = activating ]; then
  say unit "kubelet ($en, $act)"
  if rm_mode; then systemctl disable --now kubelet >/dev/null 2>&1 || exit 1; fi
fi

# Pods kubeadm reset left (it failed, or there is no kubeadm): through the CRI.
if command -v crictl >/dev/null 2>&1; then
  n=$(crictl --timeout 10s pods -q 2>/dev/null | wc -l)
  if [ "$n" -gt 0 ]; then
    say pods "$n pod sandboxes"
    if rm_mode; then crictl --timeout 60s rmp -fa >/dev/null || exit 1; fi
  fi
fi

# Mounts below /var/lib/kubelet (volumes); never delete through a mount.
for m in $(findmnt -rn -o TARGET | grep -E '^/var/lib/kubelet(/|$)' | sort -r); do
  say mount "$m"
  if rm_mode; then umount "$m" 2>/dev/null || umount -l "$m" || exit 1; fi
done
if rm_mode && findmnt -rn -o TARGET | grep -qE '^/var/lib/kubelet(/|$)'; then
  echo "still mounted below /var/lib/kubelet; nothing was deleted there" >&2
  exit 1
fi

# Files (/var/lib/installer holds the installer's markers). A directory that is a mount point (a
# dedicated etcd disk) is emptied, not removed.
for p in /etc/kubernetes /var/lib/kubelet /var/lib/etcd /var/lib/cni /run/flannel /var/lib/installer "$@"; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  if [ -d "$p" ] && mountpoint -q "$p"; then
    [ -n "$(ls -A "$p")" ] || continue
    say path "$p/*"
    if rm_mode; then find "$p" -xdev -mindepth 1 -delete || exit 1; fi
  else
    say path "$p"
    if rm_mode; then
      rm -rf --one-file-system -- "$p" || exit 1
      case "$p" in /etc/keepalived/*|/etc/haproxy/*) rmdir "${p%/*}" 2>/dev/null ;; esac
    fi
  fi
done
# The CNI's configuration directory stays: containerd watches it and would miss a re-created one.
if [ -d /etc/cni/net.d ] && [ -n "$(ls -A /etc/cni/net.d)" ]; then
  for f in /etc/cni/net.d/* /etc/cni/net.d/.[!.]*; do
    [ -e "$f" ] || continue
    say path "$f"
    if rm_mode; then rm -rf -- "$f" || exit 1; fi
  done
fi

# Links of the CNI and kube-proxy; their routes go with them.
for l in cni0 flannel.1 flannel-v6.1 kube-ipvs0; do
  ip link show dev "$l" >/dev/null 2>&1 || continue
  say link "$l"
  if rm_mode; then ip link delete "$l" || exit 1; fi
done
# Routes into the pod network on other links (flannel's host-gw backend).
IFS=,
for c in $podnets; do
  IFS=' '
  case "$c" in *:*) fam=-6 ;; *) fam=-4 ;; esac
  ip "$fam" route show root "$c" | while read -r first rest; do
    case "$first" in
      unreachable|blackhole|prohibit|throw) typ=$first dst=${rest%% *} ;;
      *) typ="" dst=$first ;;
    esac
    say route "$dst"
    if rm_mode; then ip "$fam" route del ${typ:+"$typ"} "$dst" || exit 1; fi
  done || exit 1
done
exit 0
`

// firewallScript lists (mode "list") or removes (mode "remove") only the firewall state of
// kube-proxy, the kubelet and the CNI: iptables chains named KUBE-*, FLANNEL-* and CNI-* with every
// rule that jumps to them from other chains, in both iptables back ends, and the nftables tables
// those components create by name. Every other rule, chain and table stays. It prints one line per
// item present (list) or removed (remove).
const firewallScript = `mode=$1
ours='^(KUBE-|FLANNEL-|CNI-)'
cmds=""
for c in iptables-nft ip6tables-nft iptables-legacy ip6tables-legacy; do
  command -v "$c" >/dev/null 2>&1 && cmds="$cmds $c"
done
if [ -z "$cmds" ]; then
  for c in iptables ip6tables; do command -v "$c" >/dev/null 2>&1 && cmds="$cmds $c"; done
fi
for c in $cmds; do
  for t in filter nat mangle raw security; do
    # Listing a legacy table creates it: only look at those the kernel already has.
    case "$c" in
      iptables-legacy) grep -qx "$t" /proc/net/ip_tables_names 2>/dev/null || continue ;;
      ip6tables-legacy) grep -qx "$t" /proc/net/ip6_tables_names 2>/dev/null || continue ;;
    esac
    rules=$("$c" -w -t "$t" -S 2>/dev/null) || continue
    chains=$(printf '%s\n' "$rules" | awk -v re="$ours" '$1 == "-N" && $2 ~ re { print $2 }')
    [ -n "$chains" ] || continue
    # Jumps into our chains from the others (built-in or foreign), by number, highest first.
    for from in $(printf '%s\n' "$rules" | awk -v re="$ours" '($1 == "-P" || $1 == "-N") && $2 !~ re { print $2 }'); do
      "$c" -w -t "$t" -n -L "$from" --line-numbers 2>/dev/null |
        awk -v re="$ours" 'NR > 2 && $2 ~ re { print $1, $2 }' | sort -rn |
        while read -r num target; do
          printf 'jump %s %s %s#%s -> %s\n' "$c" "$t" "$from" "$num" "$target"
          if [ "$mode" = remove ]; then "$c" -w -t "$t" -D "$from" "$num" || exit 1; fi
        done || exit 1
    done
    for ch in $chains; do
      printf 'chain %s %s %s\n' "$c" "$t" "$ch"
      if [ "$mode" = remove ]; then "$c" -w -t "$t" -F "$ch" || exit 1; fi
    done
    if [ "$mode" = remove ]; then
      for ch in $chains; do "$c" -w -t "$t" -X "$ch" || exit 1; done
    fi
  done
done
if command -v nft >/dev/null 2>&1; then
  tables=$(nft list tables 2>/dev/null)
  for ft in "ip kube-proxy" "ip6 kube-proxy" "ip flannel-ipv4" "ip6 flannel-ipv6" "ip cni_hostport" "ip6 cni_hostport" "inet cni_plugins_masquerade"; do
    printf '%s\n' "$tables" | grep -qx "table $ft" || continue
    printf 'nft-table %s\n' "$ft"
    # $ft is two words, the family and the table's name.
    if [ "$mode" = remove ]; then nft delete table "${ft%% *}" "${ft#* }" || exit 1; fi
  done
else
  echo "no-nft nft is not installed: nftables tables were not checked"
fi
exit 0
`

// leftover is one thing a cluster left on a host, as the reset scripts print it.
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
		case l.kind == "path" && (strings.HasPrefix(l.item, "/etc/kubernetes") || strings.HasPrefix(l.item, "/var/lib/kubelet") || strings.HasPrefix(l.item, "/var/lib/etcd")):
			return true
		}
	}
	return false
}

// resetArgs are the host reset script's arguments for host h.
func (h *Host) resetArgs(mode string) []string {
	s := &h.run.Cluster.Spec
	args := []string{"sh", "-c", hostResetScript, "reset", mode, s.Networking.PodSubnet}
	if h.Spec.Role == v1alpha1.RoleControlPlane {
		// The HA endpoint's configuration lives outside /etc/kubernetes; keepalived's holds the VRRP
		// password. Only control planes ever got it.
		args = append(args, manifests.KeepalivedConfigPath, manifests.KeepalivedCheckPath, manifests.HAProxyConfigPath)
	}
	return args
}

var firewallList = ssh.Cmd{Args: []string{"sh", "-c", firewallScript, "firewall", "list"}}

// inventory lists what the cluster left on the host (read-only; runs in dry runs too).
func (h *Host) inventory(ctx context.Context) (items []leftover, have map[string]bool, err error) {
	res, err := h.Query(ctx, ssh.Cmd{Args: h.resetArgs("list")})
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
func (h *Host) resetHost(ctx context.Context) error {
	items, have, err := h.inventory(ctx)
	if err != nil {
		return err
	}
	if have["no-nft"] && h.run.Cluster.Spec.KubeProxy.Mode == "nftables" {
		h.run.Log.Warn("nft is not installed: kube-proxy's nftables tables cannot be checked or removed", "host", h.Name())
	}
	if len(items) == 0 {
		return nil
	}
	if h.run.DryRun {
		if have["kubeadm"] && needsKubeadmReset(items) {
			h.run.recordChange()
			h.run.plan(PlannedAction{Host: h.Name(), Command: ssh.Quote(kubeadmReset.Args)})
		}
		for _, l := range items {
			h.run.recordChange()
			h.run.plan(PlannedAction{Host: h.Name(), Command: "remove " + l.String()})
		}
		return nil
	}
	if have["kubeadm"] && needsKubeadmReset(items) {
		if _, err := h.Exec(ctx, kubeadmReset); err != nil {
			return fmt.Errorf("kubeadm reset: %w", err)
		}
	}
	var fw, rest []leftover
	for _, l := range items {
		if isFirewall(l.kind) {
			fw = append(fw, l)
		} else {
			rest = append(rest, l)
		}
	}
	if len(rest) > 0 {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: h.resetArgs("remove")}); err != nil {
			return fmt.Errorf("remove what kubeadm reset leaves: %w", err)
		}
	}
	if len(fw) > 0 {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"sh", "-c", firewallScript, "firewall", "remove"}}); err != nil {
			return fmt.Errorf("remove kube-proxy's and the CNI's firewall rules: %w", err)
		}
	}
	left, _, err := h.inventory(ctx)
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
}

func isFirewall(kind string) bool { return kind == "jump" || kind == "chain" || kind == "nft-table" }

// kubeadmReset names containerd's socket so kubeadm never has to guess the runtime.
var kubeadmReset = ssh.Cmd{Args: []string{"kubeadm", "reset", "-f", "--cri-socket", kubeadm.CRISocket}}
