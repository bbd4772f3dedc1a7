package simhost

import (
	"fmt"
	"sync"

	"installer.dev/installer/pkg/constants"
)

// Cluster is the simulated hosts of one cluster and what they share: etcd's member list, the
// cluster CA kubeadm join fetches from the initialised control plane, and (StartAPI) a fake cluster
// API the kubelets report to.
type Cluster struct {
	mu     sync.Mutex
	hosts  []*Host
	byName map[string]*Host
	// etcd maps member names to their hex IDs.
	etcd       map[string]string
	nextMember int
	// API is the fake cluster API; nil until StartAPI.
	API *API
	// apiLB is the HA endpoint's load balancer (lb() makes it).
	apiLB *apiLB
}

// NewCluster is a cluster with no hosts.
func NewCluster() *Cluster {
	return &Cluster{byName: map[string]*Host{}, etcd: map[string]string{}}
}

// Add adds a fresh host: Debian 12 with swap on and nothing of Kubernetes.
func (c *Cluster) Add(name, ip string, controlPlane bool) *Host {
	h := newHost(c, name, ip, controlPlane)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hosts = append(c.hosts, h)
	c.byName[name] = h
	return h
}

// Host returns a host by name (nil when there is none).
func (c *Cluster) Host(name string) *Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byName[name]
}

// Hosts returns the hosts in the order they were added.
func (c *Cluster) Hosts() []*Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Host(nil), c.hosts...)
}

// EtcdMembers returns etcd's members: names and hex IDs.
func (c *Cluster) EtcdMembers() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for k, v := range c.etcd {
		out[k] = v
	}
	return out
}

// addMember adds a control plane's etcd member; a new cluster (kubeadm init) starts a new member list.
func (c *Cluster) addMember(name string, newCluster bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if newCluster {
		c.etcd = map[string]string{}
	}
	c.nextMember++
	c.etcd[name] = fmt.Sprintf("%x", 0x1e9e05c52164694d+c.nextMember)
}

// addMemberOnce adds name's member unless it is one already: kubeadm's etcd join skips a member whose
// peer URL is there (a resumed join).
func (c *Cluster) addMemberOnce(name string) {
	c.mu.Lock()
	_, ok := c.etcd[name]
	c.mu.Unlock()
	if !ok {
		c.addMember(name, false)
	}
}

func (c *Cluster) removeMember(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, m := range c.etcd {
		if m == id {
			delete(c.etcd, n)
			return true
		}
	}
	return false
}

func (c *Cluster) removeMemberOf(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.etcd, name)
}

// caCert is the cluster CA kubeadm join learns from cluster-info: the one of a control plane whose
// API server answers.
func (c *Cluster) caCert() ([]byte, bool) {
	for _, h := range c.Hosts() {
		if !h.apiServerUp() {
			continue
		}
		if f, ok := h.File(constants.PKIDir + "/ca.crt"); ok {
			return f.Content, true
		}
	}
	return nil, false
}

// controlPlanesAt reports whether every control plane's static pods run version.
func (c *Cluster) controlPlanesAt(version string) bool {
	for _, h := range c.Hosts() {
		if h.controlPlane && h.controlPlaneVersion() != version {
			return false
		}
	}
	return true
}
