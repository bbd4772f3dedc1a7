package phases

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/phases/internal/simhost"
)

// renewSim plays kubeadm certs renew and the containers' restarts on the control planes of a
// simulated cluster: renewal replaces the certificate files, and what etcd and the apiserver
// present (dialled through the host, as the real client does) follows the files only once their
// containers restart.
type renewSim struct {
	t      *testing.T
	mu     sync.Mutex
	files  map[string]map[string]tls.Certificate // host -> file -> certificate on disk
	served map[string]map[string]tls.Certificate // host -> address -> certificate served
	// stuck hosts' restarts leave the old processes running.
	stuck map[string]bool
	order []string
}

func newRenewSim(t *testing.T, sc *simCluster, cps ...string) *renewSim {
	s := &renewSim{t: t, files: map[string]map[string]tls.Certificate{}, served: map[string]map[string]tls.Certificate{}, stuck: map[string]bool{}}
	for _, name := range cps {
		h := sc.Host(name)
		s.files[name], s.served[name] = map[string]tls.Certificate{}, map[string]tls.Certificate{}
		for _, sc := range servedCerts {
			c := s.issue(h, sc.file, 10*24*time.Hour)
			s.served[name][sc.addr] = c
		}
		h.HandleCommand("kubeadm certs renew", func(args []string) simhost.Reply {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.order = append(s.order, name+" renew "+strings.Join(args, " "))
			for _, sc := range servedCerts {
				s.issue(h, sc.file, 365*24*time.Hour)
			}
			return simhost.Out("")
		})
		h.HandleScript("restart-static-pod.sh", func(args []string) simhost.Reply {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.order = append(s.order, name+" restart")
			sc.Restarted(name, "certs renew restart")
			if !s.stuck[name] {
				for _, c := range servedCerts {
					s.served[name][c.addr] = s.files[name][c.file]
				}
				h.StartAPIServer()
			}
			var out []string
			for i, c := range args[1:] {
				if c == "kube-vip" {
					out = append(out, c+" - -")
				} else {
					out = append(out, c+" old"+string(rune('a'+i))+" new"+string(rune('a'+i)))
				}
			}
			return simhost.Out(strings.Join(out, "\n") + "\n")
		})
		h.OnDial(func(ctx context.Context, network, addr string) (net.Conn, error) {
			s.mu.Lock()
			cert, ok := s.served[name][addr]
			s.mu.Unlock()
			if !ok {
				return nil, &net.OpError{Op: "dial", Net: network, Err: os.ErrNotExist}
			}
			client, server := net.Pipe()
			go func() {
				tc := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}})
				_ = tc.Handshake()
				_ = tc.Close()
			}()
			return client, nil
		})
	}
	return s
}

// issue writes a new certificate valid for validity into file on h and returns it with its key.
func (s *renewSim) issue(h *simhost.Host, file string, validity time.Duration) tls.Certificate {
	s.t.Helper()
	ca := testPKI(s.t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: h.Name() + " " + file},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validity)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cluster.Cert, key.Public(), ca.Cluster.Key)
	if err != nil {
		s.t.Fatal(err)
	}
	h.SetFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644, "root:root")
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	s.files[h.Name()][file] = c
	return c
}

// TestCertsRenewHA renews the certificates of three control planes behind keepalived-haproxy: one
// at a time, each out of the load balancer while its containers restart, the VIP holder last; each
// serves its renewed certificates afterwards, and the state directory gets the admin kubeconfig.
func TestCertsRenewHA(t *testing.T) {
	sc := haUpgradeCluster(t)
	sim := newRenewSim(t, sc, "cp1", "cp2", "cp3")
	holder := sc.VIPHolder()
	r := sc.newRun(t, nil)
	var report []RenewedHost
	if _, err := Execute(context.Background(), r, []Phase{Connect{}, GatherFacts{}, CertsRenew{Report: &report, pollInterval: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	if len(report) != 3 || report[2].Host != holder {
		t.Fatalf("renewed %+v; want 3 control planes, the VIP holder %s last", report, holder)
	}
	for _, h := range report {
		if len(h.Restarted) != 4 {
			t.Errorf("%s: restarted %v, want etcd, kube-apiserver, kube-controller-manager, kube-scheduler", h.Host, h.Restarted)
		}
		for _, c := range servedCerts {
			if got, want := h.Served[c.addr], sim.files[h.Host][c.file]; got == nil || string(got.Raw) != string(want.Certificate[0]) {
				t.Errorf("%s: %s serves %v, not the renewed %s", h.Host, c.addr, got, c.file)
			}
		}
	}
	for i, h := range report {
		if want := []string{h.Host + " renew all", h.Host + " restart"}; sim.order[2*i] != want[0] || sim.order[2*i+1] != want[1] {
			t.Errorf("step %d: %v, want %v (one control plane at a time)", i, sim.order[2*i:2*i+2], want)
		}
	}
	sc.assertAllInService(t)
	if _, err := os.Stat(r.StateDir.AdminConf()); err != nil {
		t.Errorf("no admin kubeconfig in the state directory: %v", err)
	}
}

// TestCertsRenewStopsWhenTheOldCertificateIsServed: cp's containers restart but the apiserver
// still presents the old certificate: the run stops at that control plane, leaves it out of the
// load balancer, names the control planes it did not renew, and never restarts them.
func TestCertsRenewStopsWhenTheOldCertificateIsServed(t *testing.T) {
	sc := haUpgradeCluster(t)
	sim := newRenewSim(t, sc, "cp1", "cp2", "cp3")
	holder := sc.VIPHolder()
	first := "cp1"
	if holder == "cp1" {
		first = "cp2"
	}
	sim.stuck[first] = true
	r := sc.newRun(t, nil)
	var report []RenewedHost
	_, err := Execute(context.Background(), r, []Phase{Connect{}, GatherFacts{}, CertsRenew{Report: &report, Timeout: time.Second, pollInterval: 10 * time.Millisecond}})
	if err == nil || !strings.Contains(err.Error(), "host "+first+": ") || !strings.Contains(err.Error(), "not the one in the file") ||
		!strings.Contains(err.Error(), first+" stays out of the API load balancer") || !strings.Contains(err.Error(), "(not renewed after it: ") {
		t.Fatalf("err = %v", err)
	}
	if len(report) != 0 || len(sim.order) != 2 {
		t.Errorf("renewed %v, steps %v: want nothing after %s", report, sim.order, first)
	}

	// The next run of any command that uses the load balancer finds the leftover by its marker
	// (certs renew never touches keepalived, so there is no keepalived marker) and puts it back.
	if !sc.Host(first).Exists(manifests.HAProxyOutMarker) {
		t.Fatalf("%s is out of the load balancer without the haproxy marker", first)
	}
	next := sc.newRun(t, nil)
	if _, err := Execute(context.Background(), next, []Phase{Connect{}, GatherFacts{}}); err != nil {
		t.Fatal(err)
	}
	lb := newAPILB(next, "apply", time.Second)
	lb.interval = 10 * time.Millisecond
	if err := lb.finishLeftovers(context.Background()); err != nil {
		t.Fatal(err)
	}
	views, err := lb.views(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if !v.up(first) {
			t.Errorf("haproxy on %s: %s is %s after the leftovers were finished", v.host.Name(), first, v.servers[first].Status)
		}
	}
	if sc.Host(first).Exists(manifests.HAProxyOutMarker) {
		t.Errorf("the marker on %s stays", first)
	}
}

// TestCertsRenewWhenTheAPIIsDown: no apiserver answers (the certificates expired): every control
// plane is renewed first, then every one restarted, with no load-balancer steps (there is no API to
// keep up), and each then serves its renewed certificates.
func TestCertsRenewWhenTheAPIIsDown(t *testing.T) {
	sc := haUpgradeCluster(t)
	sim := newRenewSim(t, sc, "cp1", "cp2", "cp3")
	for _, h := range []string{"cp1", "cp2", "cp3"} {
		sc.Host(h).StopAPIServer()
	}
	events := len(sc.LBEvents())
	r := sc.newRun(t, nil)
	var report []RenewedHost
	if _, err := Execute(context.Background(), r, []Phase{Connect{}, GatherFacts{}, CertsRenew{Report: &report, pollInterval: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	if len(report) != 3 {
		t.Fatalf("renewed %+v", report)
	}
	for _, h := range []string{"cp1", "cp2", "cp3"} {
		for _, other := range []string{"cp1", "cp2", "cp3"} {
			if slices.Index(sim.order, h+" renew all") > slices.Index(sim.order, other+" restart") {
				t.Errorf("%s renewed after %s restarted: %v", h, other, sim.order)
			}
		}
	}
	for _, e := range sc.LBEvents()[events:] {
		if strings.Contains(e, "haproxy:") || strings.Contains(e, "keepalived:") {
			t.Errorf("a load-balancer step while the API was down: %s", e)
		}
	}
	for _, h := range report {
		if got := h.Served["127.0.0.1:6443"]; got == nil || string(got.Raw) != string(sim.files[h.Host]["/etc/kubernetes/pki/apiserver.crt"].Certificate[0]) {
			t.Errorf("%s does not serve its renewed certificate", h.Host)
		}
	}
}
