package hosts

import (
	"fmt"
	"net"

	"installer.dev/installer/pkg/versions"
)

// Topology is the shape of a lab: how many hosts, how many of them control planes, the API endpoint's
// load balancer and where Kubernetes comes from.
type Topology struct {
	Hosts         int    // total hosts (default 3)
	ControlPlanes int    // default 1
	LoadBalancer  string // none (default) | keepalived-haproxy | kube-vip
	Install       string // package | binary | bundle; empty: binary when the mirror runs, else the installer's default
	// KubernetesVersion is written to the spec (and picks the lab CCM's image); default: the newest
	// supported release.
	KubernetesVersion string
}

// Network is one of the lab's two internal podman networks.
type Network struct {
	Name    string // podman network name
	Bridge  string // Linux bridge on this machine
	Prefix  string // first three octets of the /24, e.g. "172.30.0"
	Gateway string // the bridge's address (prefix + ".1")
}

// Subnet is the network in CIDR notation.
func (n Network) Subnet() string { return n.Prefix + ".0/24" }

// address returns prefix.octet.
func (n Network) address(octet int) string { return fmt.Sprintf("%s.%d", n.Prefix, octet) }

// DefaultNetworks are the public (SSH, default route, servers on the bridge) and private (node IPs)
// networks. Their names and bridges are the lab's own, so cleanup can never touch anything else.
func DefaultNetworks() (public, private Network) {
	return Network{Name: "installer-lab-public", Bridge: "labpub0", Prefix: "172.30.0", Gateway: "172.30.0.1"},
		Network{Name: "installer-lab-private", Bridge: "labpriv0", Prefix: "172.31.0", Gateway: "172.31.0.1"}
}

// Interface names inside every host.
const (
	PublicInterface  = "eth0"
	PrivateInterface = "eth1"
)

// firstHostOctet: .1 is the bridge, .100 the VIP; hosts take .11 onwards.
const (
	firstHostOctet = 11
	vipOctet       = 100
	maxHosts       = vipOctet - firstHostOctet
)

// Roles of hosts, as the spec names them.
const (
	RoleControlPlane = "control-plane"
	RoleWorker       = "worker"
)

// Host is one lab host.
type Host struct {
	Name           string
	Role           string
	Address        string // public network (eth0)
	PrivateAddress string // private network (eth1)
	PublicMAC      string
	PrivateMAC     string
}

func (t Topology) withDefaults() Topology {
	if t.Hosts == 0 {
		t.Hosts = 3
	}
	if t.ControlPlanes == 0 {
		t.ControlPlanes = 1
	}
	if t.LoadBalancer == "" {
		t.LoadBalancer = "none"
	}
	if t.KubernetesVersion == "" {
		t.KubernetesVersion = versions.Default().Kubernetes
	}
	return t
}

func (t Topology) validate() error {
	switch {
	case t.Hosts < 1 || t.Hosts > maxHosts:
		return fmt.Errorf("topology: %d hosts; the lab runs 1 to %d", t.Hosts, maxHosts)
	case t.ControlPlanes < 1 || t.ControlPlanes > t.Hosts:
		return fmt.Errorf("topology: %d control planes among %d hosts", t.ControlPlanes, t.Hosts)
	}
	switch t.LoadBalancer {
	case "none", "keepalived-haproxy", "kube-vip":
	case "external":
		return fmt.Errorf("topology: the lab has no external load balancer; use none, keepalived-haproxy or kube-vip")
	default:
		return fmt.Errorf("topology: unknown load balancer %q", t.LoadBalancer)
	}
	if _, ok := versions.Lookup(t.KubernetesVersion); !ok {
		return fmt.Errorf("topology: Kubernetes %s is not supported (%s)", t.KubernetesVersion, versions.SupportedList())
	}
	switch t.Install {
	case "", "package", "binary", "bundle":
	default:
		return fmt.Errorf("topology: unknown install source %q", t.Install)
	}
	return nil
}

// plan names and addresses the hosts: cp1..cpK, then w1..wM.
func (t Topology) plan(public, private Network) []Host {
	var hs []Host
	for i := 0; i < t.Hosts; i++ {
		name := fmt.Sprintf("cp%d", i+1)
		role := RoleControlPlane
		if i >= t.ControlPlanes {
			name, role = fmt.Sprintf("w%d", i-t.ControlPlanes+1), RoleWorker
		}
		octet := firstHostOctet + i
		pub, priv := public.address(octet), private.address(octet)
		hs = append(hs, Host{Name: name, Role: role, Address: pub, PrivateAddress: priv,
			PublicMAC: macFor(pub), PrivateMAC: macFor(priv)})
	}
	return hs
}

// macFor derives a fixed, locally administered MAC from an IPv4 address: a re-created host keeps its
// MAC, so the machine's ARP cache never points at a dead one.
func macFor(ip string) string {
	v4 := net.ParseIP(ip).To4()
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", v4[0], v4[1], v4[2], v4[3])
}
