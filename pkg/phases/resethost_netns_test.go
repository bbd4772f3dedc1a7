package phases

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"installer.dev/installer/pkg/scripts"
)

// netns is a network namespace made for one test and deleted after it. Creating one needs root
// (CI runs as root); iptables-nft, iptables-legacy and nft come from Debian's iptables and nftables.
type netns struct {
	t    *testing.T
	name string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	name := fmt.Sprintf("installer-reset-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s (needs root and iproute2): %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v\n%s", name, err, out)
		}
	})
	return &netns{t: t, name: name}
}

// run runs argv inside the namespace and returns its stdout; failure fails the test.
func (n *netns) run(args ...string) string {
	n.t.Helper()
	out, err := n.try(args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

func (n *netns) try(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// sortedLines returns the non-empty lines of s, sorted.
func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// oursInSave reports whether a line of iptables -S output declares, fills or jumps to a chain of
// kube-proxy, the kubelet or the CNI. The target is the line's last word after -j or -g (a comment
// may mention anything).
func oursInSave(l string) bool {
	f := strings.Fields(l)
	ours := func(s string) bool {
		return strings.HasPrefix(s, "KUBE-") || strings.HasPrefix(s, "FLANNEL-") || strings.HasPrefix(s, "CNI-")
	}
	if len(f) >= 2 && (f[0] == "-N" || f[0] == "-A") && ours(f[1]) {
		return true
	}
	n := len(f)
	return n >= 2 && (f[n-2] == "-j" || f[n-2] == "-g") && ours(f[n-1])
}

// TestFirewallScriptInNetns lays down what kube-proxy, the kubelet, flannel and the CNI plugins
// create (chains, jumps from built-in and foreign chains, nftables tables) beside an administrator's
// own rules in a fresh network namespace, in both iptables back ends, and runs the real firewall
// script there: "list" names exactly ours, "remove" removes exactly ours, the administrator's rules
// are untouched, and a second run finds and changes nothing.
func TestFirewallScriptInNetns(t *testing.T) {
	ns := newNetns(t)
	setup := [][]string{
		// kube-proxy (iptables mode) and the kubelet, iptables-nft.
		{"iptables-nft", "-t", "nat", "-N", "KUBE-SERVICES"},
		{"iptables-nft", "-t", "nat", "-N", "KUBE-SVC-ABC"},
		{"iptables-nft", "-t", "nat", "-N", "KUBE-MARK-MASQ"},
		{"iptables-nft", "-t", "nat", "-A", "KUBE-SERVICES", "-d", "10.96.0.1/32", "-p", "tcp", "--dport", "443", "-m", "comment", "--comment", "default/kubernetes:https cluster IP", "-j", "KUBE-SVC-ABC"},
		{"iptables-nft", "-t", "nat", "-A", "KUBE-SVC-ABC", "-j", "KUBE-MARK-MASQ"},
		{"iptables-nft", "-t", "nat", "-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"},
		{"iptables-nft", "-t", "nat", "-A", "OUTPUT", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"},
		{"iptables-nft", "-t", "filter", "-N", "KUBE-FIREWALL"},
		{"iptables-nft", "-t", "filter", "-A", "KUBE-FIREWALL", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"},
		{"iptables-nft", "-t", "filter", "-I", "INPUT", "-j", "KUBE-FIREWALL"},
		{"iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"},
		{"iptables-nft", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY"},
		// flannel and the CNI plugins (bridge ipMasq, portmap).
		{"iptables-nft", "-t", "nat", "-N", "FLANNEL-POSTRTG"},
		{"iptables-nft", "-t", "nat", "-A", "FLANNEL-POSTRTG", "-s", "10.244.0.0/16", "-d", "10.244.0.0/16", "-j", "RETURN"},
		{"iptables-nft", "-t", "nat", "-A", "POSTROUTING", "-m", "comment", "--comment", "flanneld masq", "-j", "FLANNEL-POSTRTG"},
		{"iptables-nft", "-t", "filter", "-N", "FLANNEL-FWD"},
		{"iptables-nft", "-t", "filter", "-A", "FORWARD", "-m", "comment", "--comment", "flanneld forward", "-j", "FLANNEL-FWD"},
		{"iptables-nft", "-t", "nat", "-N", "CNI-HOSTPORT-DNAT"},
		{"iptables-nft", "-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
		{"iptables-nft", "-t", "nat", "-N", "CNI-8f1c2a"},
		{"iptables-nft", "-t", "nat", "-A", "POSTROUTING", "-s", "10.244.1.5/32", "-m", "comment", "--comment", "name: \"cbr0\" id: \"abc\"", "-j", "CNI-8f1c2a"},
		{"ip6tables-nft", "-t", "nat", "-N", "KUBE-SERVICES"},
		{"ip6tables-nft", "-t", "nat", "-A", "OUTPUT", "-j", "KUBE-SERVICES"},
		// kube-proxy's nftables mode and the CNI plugins' nftables tables.
		{"nft", "add", "table", "ip", "kube-proxy"},
		{"nft", "add", "chain", "ip", "kube-proxy", "services"},
		{"nft", "add", "table", "ip6", "kube-proxy"},
		{"nft", "add", "table", "inet", "cni_plugins_masquerade"},
		// A legacy-backend leftover (kube-proxy on a host whose other tools use iptables-legacy).
		{"iptables-legacy", "-t", "filter", "-N", "KUBE-FORWARD"},
		{"iptables-legacy", "-t", "filter", "-A", "FORWARD", "-j", "KUBE-FORWARD"},

		// The administrator's own rules: they must survive, in the same order.
		{"iptables-nft", "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-m", "comment", "--comment", "admin ssh", "-j", "ACCEPT"},
		{"iptables-nft", "-t", "filter", "-N", "ADMIN-KUBE-AUDIT"},
		{"iptables-nft", "-t", "filter", "-A", "ADMIN-KUBE-AUDIT", "-s", "192.0.2.0/24", "-j", "DROP"},
		{"iptables-nft", "-t", "filter", "-A", "ADMIN-KUBE-AUDIT", "-j", "KUBE-FIREWALL"}, // a foreign chain jumping into ours
		{"iptables-nft", "-t", "filter", "-A", "INPUT", "-j", "ADMIN-KUBE-AUDIT"},
		{"iptables-nft", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.50.0/24", "-o", "lo", "-m", "comment", "--comment", "admin KUBE-looking comment -j KUBE-X", "-j", "MASQUERADE"},
		{"ip6tables-nft", "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "443", "-j", "ACCEPT"},
		{"iptables-legacy", "-t", "filter", "-A", "INPUT", "-p", "udp", "--dport", "53", "-j", "ACCEPT"},
		{"nft", "add", "table", "inet", "adminfw"},
		{"nft", "add", "chain", "inet", "adminfw", "input", "{ type filter hook input priority 0 ; policy accept ; }"},
		{"nft", "add", "rule", "inet", "adminfw", "input", "tcp", "dport", "2222", "accept"},
	}
	for _, c := range setup {
		ns.run(c...)
	}

	// What belongs to the administrator, read with the same tools the check below uses.
	admin := func() string {
		var b strings.Builder
		for _, c := range [][]string{
			{"iptables-nft", "-t", "filter", "-S"}, {"iptables-nft", "-t", "nat", "-S"}, {"ip6tables-nft", "-t", "filter", "-S"},
			{"iptables-legacy", "-t", "filter", "-S"}, {"nft", "list", "table", "inet", "adminfw"},
		} {
			out := ns.run(c...)
			for _, l := range strings.Split(out, "\n") {
				if l != "" && !oursInSave(l) {
					fmt.Fprintf(&b, "%s: %s\n", c[0], l)
				}
			}
		}
		return b.String()
	}
	before := admin()
	for _, want := range []string{"admin ssh", "-A ADMIN-KUBE-AUDIT -s 192.0.2.0/24 -j DROP", "-A INPUT -j ADMIN-KUBE-AUDIT", "admin KUBE-looking", "--dport 443", "--dport 53", "tcp dport 2222 accept"} {
		if !strings.Contains(before, want) {
			t.Fatalf("setup: the administrator's rule %q is missing:\n%s", want, before)
		}
	}

	listed := ns.run(scripts.ResetFirewall.Args("list")...)
	want := []string{
		"chain ip6tables-nft nat KUBE-SERVICES",
		"chain iptables-legacy filter KUBE-FORWARD",
		"chain iptables-nft filter FLANNEL-FWD",
		"chain iptables-nft filter KUBE-FIREWALL",
		"chain iptables-nft mangle KUBE-IPTABLES-HINT",
		"chain iptables-nft mangle KUBE-KUBELET-CANARY",
		"chain iptables-nft nat CNI-8f1c2a",
		"chain iptables-nft nat CNI-HOSTPORT-DNAT",
		"chain iptables-nft nat FLANNEL-POSTRTG",
		"chain iptables-nft nat KUBE-MARK-MASQ",
		"chain iptables-nft nat KUBE-SERVICES",
		"chain iptables-nft nat KUBE-SVC-ABC",
		"jump ip6tables-nft nat OUTPUT#1 -> KUBE-SERVICES",
		"jump iptables-legacy filter FORWARD#1 -> KUBE-FORWARD",
		"jump iptables-nft filter ADMIN-KUBE-AUDIT#2 -> KUBE-FIREWALL",
		"jump iptables-nft filter FORWARD#1 -> FLANNEL-FWD",
		"jump iptables-nft filter INPUT#1 -> KUBE-FIREWALL",
		"jump iptables-nft nat OUTPUT#1 -> KUBE-SERVICES",
		"jump iptables-nft nat POSTROUTING#1 -> FLANNEL-POSTRTG",
		"jump iptables-nft nat POSTROUTING#2 -> CNI-8f1c2a",
		"jump iptables-nft nat PREROUTING#1 -> KUBE-SERVICES",
		"jump iptables-nft nat PREROUTING#2 -> CNI-HOSTPORT-DNAT",
		"nft-table inet cni_plugins_masquerade",
		"nft-table ip kube-proxy",
		"nft-table ip6 kube-proxy",
	}
	if got := sortedLines(listed); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("list:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	removed := ns.run(scripts.ResetFirewall.Args("remove")...)
	if got := sortedLines(removed); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("remove reported:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if after := admin(); after != before {
		t.Errorf("the administrator's rules changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	nftOurs := regexp.MustCompile(`(chain|jump|goto) (KUBE-|FLANNEL-|CNI-)|table (ip|ip6|inet) (kube-proxy|cni_plugins_masquerade) `)
	for _, c := range [][]string{{"iptables-nft-save"}, {"ip6tables-nft-save"}, {"iptables-legacy-save"}, {"nft", "list", "ruleset"}} {
		for _, l := range strings.Split(ns.run(c...), "\n") {
			decl := strings.HasPrefix(l, ":") && oursInSave("-N "+strings.TrimPrefix(strings.Fields(l)[0], ":"))
			if decl || oursInSave(l) || nftOurs.MatchString(l) {
				t.Errorf("%s still shows: %s", c[0], l)
			}
		}
	}
	// The legacy back end's other tables were never created by looking at them.
	if tables := ns.run("cat", "/proc/net/ip_tables_names"); strings.TrimSpace(tables) != "filter" {
		t.Errorf("legacy tables after the run: %q, want only filter", tables)
	}

	if again := ns.run(scripts.ResetFirewall.Args("list")...); strings.TrimSpace(again) != "" {
		t.Errorf("second list found:\n%s", again)
	}
	if again := ns.run(scripts.ResetFirewall.Args("remove")...); strings.TrimSpace(again) != "" {
		t.Errorf("second remove did:\n%s", again)
	}
	if after := admin(); after != before {
		t.Errorf("the second run changed the administrator's rules:\n%s", after)
	}
}

// hostScriptHarness runs in a fresh network namespace and a private mount namespace: overlays over
// /etc and /var/lib (the machine's own files are the read-only lower layer) and tmpfs over /run and
// /etc/cni give the host reset script a host of its own. It lays down what a node leaves, then
// prints the script's list, its remove, a second list and the state afterwards, in sections.
const hostScriptHarness = `set -e
tmp=$1 script=$2 name=$3
for d in etc varlib; do mkdir -p "$tmp/$d-up" "$tmp/$d-work"; done
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$tmp/etc-up,workdir=$tmp/etc-work" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$tmp/varlib-up,workdir=$tmp/varlib-work" /var/lib
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc/cni
mkdir -p /etc/kubernetes/manifests /etc/kubernetes/tmp/kubeadm-kubelet-config-1 /etc/kubernetes/installer /etc/cni/net.d \
  /var/lib/kubelet/pods/p1/volumes/v1 /var/lib/etcd /var/lib/cni/networks/cbr0 /run/flannel /etc/keepalived /etc/haproxy
echo x > /etc/kubernetes/installer/kubeadm.yaml
echo x > /etc/kubernetes/tmp/kubeadm-kubelet-config-1/config.yaml
echo x > /etc/cni/net.d/10-flannel.conflist
echo x > /run/flannel/subnet.env
echo x > /var/lib/cni/networks/cbr0/last_reserved_ip.0
echo secret > /etc/keepalived/keepalived.conf
echo the-admins > /etc/haproxy/errors.http
mount -t tmpfs tmpfs /var/lib/kubelet/pods/p1/volumes/v1
echo token > /var/lib/kubelet/pods/p1/volumes/v1/token
mount -t tmpfs tmpfs /var/lib/etcd
mkdir /var/lib/etcd/member && echo x > /var/lib/etcd/member/db
ip link set lo up
ip link add cni0 type bridge && ip addr add 10.244.0.1/24 dev cni0 && ip link set cni0 up
ip link add flannel.1 type vxlan id 1 dstport 8472 && ip link set flannel.1 up
ip route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
ip link add adm0 type bridge && ip addr add 192.168.77.1/24 dev adm0 && ip link set adm0 up
ip route add 10.244.5.0/24 via 192.168.77.2 dev adm0
ip route add 198.51.100.0/24 via 192.168.77.2 dev adm0
set +e
args="10.244.0.0/16 /etc/keepalived/keepalived.conf /etc/keepalived/check_apiserver.sh /etc/haproxy/haproxy.cfg"
echo "== list"; sh -c "$script" "$name" list $args; echo "rc $?"
echo "== remove"; sh -c "$script" "$name" remove $args; echo "rc $?"
echo "== again"; sh -c "$script" "$name" list $args; echo "rc $?"
echo "== after"
for p in /etc/kubernetes /var/lib/kubelet /var/lib/cni /run/flannel /etc/keepalived /etc/haproxy/errors.http /etc/cni/net.d; do
  [ -e "$p" ] && echo "exists $p"
done
mountpoint -q /var/lib/etcd && echo "mountpoint /var/lib/etcd: $(ls -A /var/lib/etcd | wc -l) entries"
findmnt -rn -o TARGET | grep '^/var/lib/kubelet' | sed 's/^/mount /'
ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
ip -4 route show | sed 's/^/route /'
`

// TestHostScriptInNamespaces runs the real host reset script over what kubeadm reset leaves (files,
// a volume mount, a dedicated etcd mount, CNI links and routes, a host-gw route) beside the host's
// own link, route and file: list names exactly the leftovers, remove removes exactly those, a second
// list finds nothing, and the host's own things stay.
func TestHostScriptInNamespaces(t *testing.T) {
	ns := newNetns(t)
	out := ns.run("unshare", "--mount", "--propagation", "private", "sh", "-c", hostScriptHarness, "harness", t.TempDir(), scripts.ResetHost.Body, scripts.ResetHost.Name)
	sections := map[string]string{}
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(l, "== "); ok {
			cur = name
			continue
		}
		sections[cur] += l + "\n"
	}
	want := map[string]string{
		"list": `mount /var/lib/kubelet/pods/p1/volumes/v1
path /etc/kubernetes
path /var/lib/kubelet
path /var/lib/etcd/*
path /var/lib/cni
path /run/flannel
path /etc/keepalived/keepalived.conf
path /etc/cni/net.d/10-flannel.conflist
link cni0
link flannel.1
route 10.244.0.0/24
route 10.244.1.0/24
route 10.244.5.0/24
rc 0
`,
		// Links go before routes: their routes go with them.
		"remove": `mount /var/lib/kubelet/pods/p1/volumes/v1
path /etc/kubernetes
path /var/lib/kubelet
path /var/lib/etcd/*
path /var/lib/cni
path /run/flannel
path /etc/keepalived/keepalived.conf
path /etc/cni/net.d/10-flannel.conflist
link cni0
link flannel.1
route 10.244.5.0/24
rc 0
`,
		"again": "rc 0\n",
		"after": `exists /etc/haproxy/errors.http
exists /etc/cni/net.d
mountpoint /var/lib/etcd: 0 entries
link lo
link adm0
route 192.168.77.0/24 dev adm0 proto kernel scope link src 192.168.77.1 
route 198.51.100.0/24 via 192.168.77.2 dev adm0 
`,
	}
	for _, name := range []string{"list", "remove", "again", "after"} {
		if got := strings.TrimRight(sections[name], "\n") + "\n"; got != want[name] {
			t.Errorf("%s:\n%s\nwant:\n%s", name, got, want[name])
		}
	}
}
