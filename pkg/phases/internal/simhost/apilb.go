package simhost

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/manifests"
)

// apiLB is the API endpoint's load balancer of loadBalancer keepalived-haproxy across the simulated
// control planes: who holds the VIP, the installer's maintenance markers and each haproxy's admin
// state of each server. keepalived follows a marker at once (VRRP's seconds are the lab's to
// measure) and never preempts (nopreempt). Events records what happened in order, across hosts.
type apiLB struct {
	mu     sync.Mutex
	holder string
	marker map[string]bool
	// admin is haproxy host -> server -> "drain" or "maint" ("" or absent: ready).
	admin  map[string]map[string]string
	events []string
}

func (c *Cluster) lb() *apiLB {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apiLB == nil {
		c.apiLB = &apiLB{marker: map[string]bool{}, admin: map[string]map[string]string{}}
	}
	return c.apiLB
}

// LBEvents are the load balancer's changes and the control-plane restarts, in order
// ("cp2 haproxy: set server k8s-api/cp1 state drain", "vip cp1 -> cp2", "cp1 kubeadm upgrade
// (in service: false)").
func (c *Cluster) LBEvents() []string {
	lb := c.lb()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]string(nil), lb.events...)
}

// VIPHolder is the control plane that holds the VIP ("" when none can).
func (c *Cluster) VIPHolder() string {
	lb := c.lb()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return c.settleVIP(lb)
}

// SetHAProxyAdmin sets haproxy's admin state of server on host ("drain", "maint" or ""; "absent":
// server is not in that haproxy's config, as for a control plane joined after it was written).
func (c *Cluster) SetHAProxyAdmin(host, server, state string) {
	lb := c.lb()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.admin[host] == nil {
		lb.admin[host] = map[string]string{}
	}
	lb.admin[host][server] = state
}

// inService: no marker on name and no haproxy keeps it out (lb.mu held).
func (c *Cluster) inService(lb *apiLB, name string) bool {
	if lb.marker[name] {
		return false
	}
	for _, servers := range lb.admin {
		if servers[name] != "" && servers[name] != "absent" {
			return false
		}
	}
	return true
}

// restarted records that name's control-plane static pods restarted, and whether clients could
// still reach them through the load balancer then.
func (c *Cluster) restarted(name, what string) {
	lb := c.lb()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.events = append(lb.events, fmt.Sprintf("%s %s (in service: %t, holds the VIP: %t)", name, what, c.inService(lb, name), c.settleVIP(lb) == name))
}

// Restarted records, for a test's own command handler, that name's control-plane static pods
// restarted (LBEvents shows whether clients could reach them then).
func (c *Cluster) Restarted(name, what string) { c.restarted(name, what) }

// keepalivedEligible: keepalived runs on the host and its check passes: no marker, and its haproxy
// reaches an apiserver that is up (the check asks the API through the host's own haproxy).
func (c *Cluster) keepalivedEligible(lb *apiLB, h *Host) bool {
	if !h.controlPlane || !h.exists(constants.StaticPodDir+"/keepalived.yaml") || !h.exists(constants.StaticPodDir+"/haproxy.yaml") || lb.marker[h.name] {
		return false
	}
	for _, s := range c.Hosts() {
		if s.controlPlane && lb.admin[h.name][s.name] != "maint" && s.apiServerUp() {
			return true
		}
	}
	return false
}

// settleVIP keeps the VIP where it is while that host stays eligible, else moves it to the first
// eligible control plane (lb.mu held).
func (c *Cluster) settleVIP(lb *apiLB) string {
	if h := c.Host(lb.holder); h != nil && c.keepalivedEligible(lb, h) {
		return lb.holder
	}
	next := ""
	for _, h := range c.Hosts() {
		if c.keepalivedEligible(lb, h) {
			next = h.name
			break
		}
	}
	if next != lb.holder {
		lb.events = append(lb.events, fmt.Sprintf("vip %s -> %s", word(lb.holder != "", lb.holder, "none"), word(next != "", next, "none")))
		lb.holder = next
	}
	return next
}

var haproxyCommand = regexp.MustCompile(`^(set server k8s-api/(\S+) state (ready|drain|maint)|shutdown sessions server k8s-api/(\S+))$`)

// apiLBScript is api-lb.sh ACTION ARG... on this host.
func (h *Host) apiLBScript(args []string) Reply {
	c := h.cluster
	lb := c.lb()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	haproxy := h.exists(constants.StaticPodDir + "/haproxy.yaml")
	switch args[0] {
	case "state":
		check, _ := h.File(args[3])
		var b strings.Builder
		fmt.Fprintf(&b, "marker %s\nkeepalived %s\nvip %s\n", word(lb.marker[h.name], "yes", "no"),
			word(strings.Contains(string(check.Content), args[2]), "yes", "no"), word(c.settleVIP(lb) == h.name, "yes", "no"))
		if !haproxy {
			b.WriteString("haproxy none\n")
			return Out(b.String())
		}
		b.WriteString("haproxy\n# pxname,svname,qcur,qmax,scur,status\nk8s-api,FRONTEND,,,4,OPEN\n")
		for _, s := range c.Hosts() {
			if !s.controlPlane {
				continue
			}
			if lb.admin[h.name][s.name] == "absent" {
				continue
			}
			status, sessions := "UP", 2
			switch {
			case lb.admin[h.name][s.name] == "maint":
				status, sessions = "MAINT", 0
			case !s.apiServerUp():
				status, sessions = "DOWN", 0
			case lb.admin[h.name][s.name] == "drain":
				status, sessions = "DRAIN", 0
			}
			fmt.Fprintf(&b, "k8s-api,%s,0,0,%d,%s\n", s.name, sessions, status)
		}
		b.WriteString("k8s-api,BACKEND,0,0,4,UP\n\n")
		return Out(b.String())
	case "haproxy":
		if !haproxy {
			return Exit(1, "2025/01/01 socat[1] E connect(5, AF=1 \""+args[1]+"\", 27): No such file or directory")
		}
		var answer strings.Builder
		for _, cmd := range strings.Split(args[2], ";") {
			m := haproxyCommand.FindStringSubmatch(strings.TrimSpace(cmd))
			if m == nil {
				answer.WriteString("Unknown command.\n")
				continue
			}
			server := m[2] + m[4]
			if s := c.Host(server); s == nil || !s.controlPlane || lb.admin[h.name][server] == "absent" {
				answer.WriteString("No such server.\n")
				continue
			}
			if m[3] != "" {
				if lb.admin[h.name] == nil {
					lb.admin[h.name] = map[string]string{}
				}
				lb.admin[h.name][server] = strings.TrimPrefix(m[3], "ready")
			}
			lb.events = append(lb.events, h.name+" haproxy: "+strings.TrimSpace(cmd))
			answer.WriteString("\n")
		}
		return Out(answer.String())
	case "hold", "release":
		if args[1] != manifests.KeepalivedMaintenanceFile {
			// Any other marker is a plain file.
			if args[0] == "hold" {
				h.SetFile(args[1], nil, 0o644, "root:root")
			} else {
				h.remove([]string{args[1]})
			}
			return Out("")
		}
		lb.marker[h.name] = args[0] == "hold"
		lb.events = append(lb.events, h.name+" keepalived: "+args[0])
		c.settleVIP(lb)
		return Out("")
	}
	return Exit(2, "unknown action "+args[0])
}
