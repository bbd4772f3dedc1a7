package phases

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// renewedComponents are the static pods that read the certificates and kubeconfigs `kubeadm certs
// renew all` rewrites only when they start, in the order they are restarted: etcd first (the
// apiserver is its client), kube-vip last (it reads admin.conf; it has no manifest without it).
var renewedComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-vip"}

// servedCerts are the TLS endpoints on every control plane whose certificate must be the renewed
// file once its process restarted.
var servedCerts = []struct{ addr, file string }{
	{"127.0.0.1:2379", constants.PKIDir + "/etcd/server.crt"},
	{constants.LocalAPIServer, constants.PKIDir + "/apiserver.crt"},
}

// RenewedHost is what CertsRenew did on one control plane.
type RenewedHost struct {
	Host string
	// Restarted are the containers restarted, as "name old-id new-id".
	Restarted []string
	// Served are the certificates the restarted etcd and apiserver present, by address.
	Served map[string]*x509.Certificate
}

// CertsRenew renews the certificates and kubeconfigs of the target control planes with `kubeadm
// certs renew all`, one control plane at a time: out of the API's load balancer (keepalived-haproxy
// with several control planes), renew, restart the static pods that read them, check that etcd and
// the apiserver now serve the renewed certificates, wait for /readyz and every etcd member healthy,
// back in. The VIP holder goes last. Then the state directory's admin kubeconfig is refreshed.
// kubeadm keeps each certificate's subject and SANs and signs with the cluster's CAs, which it
// never changes; the kubelets' client certificates rotate by themselves and are not touched.
type CertsRenew struct {
	// Only renews these control planes (all when empty); the run's other control planes are still
	// part of it: their haproxy takes each renewed one out of the API's load balancer.
	Only []string
	// Timeout bounds each wait: a restarted container, the apiserver ready, etcd healthy.
	Timeout time.Duration
	// Report receives one entry per control plane renewed.
	Report *[]RenewedHost
	// pollInterval between health polls (tests shorten it).
	pollInterval time.Duration
}

func (CertsRenew) Name() string { return "certs/renew" }

func (c CertsRenew) Run(ctx context.Context, r *Run) error {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.pollInterval == 0 {
		c.pollInterval = 2 * time.Second
	}
	var cps []*Host
	for _, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		if len(c.Only) == 0 || slices.Contains(c.Only, h.Name()) {
			cps = append(cps, h)
		}
	}
	if len(cps) == 0 {
		return errors.New("no control plane to renew: certs renew renews the control planes' certificates (the kubelets rotate their own)")
	}
	down, err := apiDownOn(ctx, cps)
	if err != nil {
		return err
	}
	if down {
		return c.renewAllAtOnce(ctx, r, cps)
	}
	lb := newAPILB(r, "certs renew", c.Timeout)
	if lb != nil {
		if err := lb.finishLeftovers(ctx); err != nil {
			return err
		}
	}
	cps, err = lb.lastHolder(ctx, cps)
	if err != nil {
		return err
	}
	for i, h := range cps {
		start := time.Now()
		done := RenewedHost{Host: h.Name(), Served: map[string]*x509.Certificate{}}
		err := lb.outOfService(ctx, h, "certs renew", false, func(ctx context.Context) error {
			if err := c.renewFiles(ctx, h); err != nil {
				return err
			}
			if err := c.restart(ctx, h, &done); err != nil {
				return err
			}
			return c.verify(ctx, r, h, &done)
		})
		if err != nil {
			if rest := hostNames(cps[i+1:]); rest != "" {
				err = fmt.Errorf("%w (not renewed after it: %s)", err, rest)
			}
			return err
		}
		*c.Report = append(*c.Report, done)
		r.fx.Done("certificate renewal", start, "host", h.Name())
	}
	return saveAdminKubeconfig(ctx, r, cps[0])
}

// apiDownOn reports whether no apiserver of cps answers /readyz: the cluster is down already (its
// certificates expired, say), and one control plane renewed at a time would never become healthy
// among peers whose certificates etcd and the apiserver still refuse.
func apiDownOn(ctx context.Context, cps []*Host) (bool, error) {
	for _, h := range cps {
		if _, err := h.Query(ctx, ssh.Cmd{Args: localReadyz}); err == nil {
			return false, nil
		} else if ssh.IsHostAccess(err) {
			return false, hostErr(h.Name(), err)
		}
	}
	return true, nil
}

// renewAllAtOnce is the renewal of a cluster whose API is down: every control plane's files, then
// every control plane's static pods, then the checks; the load balancer has nothing to protect.
func (c CertsRenew) renewAllAtOnce(ctx context.Context, r *Run, cps []*Host) error {
	r.Log.Warn("certs renew: no apiserver answers /readyz (expired certificates?): renewing every control plane, then restarting them all", "hosts", hostNames(cps))
	done := make([]RenewedHost, len(cps))
	index := map[*Host]int{}
	for i, h := range cps {
		index[h] = i
		done[i] = RenewedHost{Host: h.Name(), Served: map[string]*x509.Certificate{}}
	}
	for _, stage := range []func(ctx context.Context, h *Host) error{
		c.renewFiles,
		func(ctx context.Context, h *Host) error { return c.restart(ctx, h, &done[index[h]]) },
		func(ctx context.Context, h *Host) error { return c.verify(ctx, r, h, &done[index[h]]) },
	} {
		if err := ForEachHost(ctx, cps, r.Concurrency, stage); err != nil {
			return err
		}
	}
	*c.Report = append(*c.Report, done...)
	return saveAdminKubeconfig(ctx, r, cps[0])
}

// renewFiles has kubeadm renew every certificate and kubeconfig it made on h.
func (c CertsRenew) renewFiles(ctx context.Context, h *Host) error {
	if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "certs", "renew", "all"}}); err != nil {
		return hostErr(h.Name(), fmt.Errorf("kubeadm certs renew all: %w", err))
	}
	return nil
}

// restart restarts the static pods that read the renewed files.
func (c CertsRenew) restart(ctx context.Context, h *Host, done *RenewedHost) error {
	timeout := strconv.Itoa(int(c.Timeout.Seconds()))
	res, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.RestartStaticPod.Args(append([]string{timeout}, renewedComponents...)...)},
		[]string{"restart the static pods " + strings.Join(renewedComponents, ", ") + " (those with a manifest): each manifest moved out until its container stopped, then back"})
	if err != nil {
		return hostErr(h.Name(), fmt.Errorf("restart the control plane's static pods: %w", err))
	}
	for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] != "-" {
			done.Restarted = append(done.Restarted, line)
		}
	}
	return nil
}

// verify waits until etcd and the apiserver on h serve the renewed certificates, the apiserver is
// ready and every etcd member healthy.
func (c CertsRenew) verify(ctx context.Context, r *Run, h *Host, done *RenewedHost) error {
	return r.fx.Observe(ctx, h.Name()+" serves the renewed certificates, its apiserver ready and etcd healthy", func(ctx context.Context) error {
		for _, s := range servedCerts {
			cert, err := c.waitServed(ctx, h, s.addr, s.file)
			if err != nil {
				return hostErr(h.Name(), err)
			}
			done.Served[s.addr] = cert
		}
		if err := h.waitReadyz(ctx, c.pollInterval, c.Timeout); err != nil {
			return hostErr(h.Name(), err)
		}
		if err := h.etcdHealthy(ctx, c.Timeout); err != nil {
			return hostErr(h.Name(), err)
		}
		return nil
	})
}

func (c CertsRenew) waitServed(ctx context.Context, h *Host, addr, file string) (*x509.Certificate, error) {
	return waitServed(ctx, h, addr, file, c.pollInterval, c.Timeout)
}

// waitServed polls until what listens on addr (from h's side) presents the certificate in file,
// and returns it: a process still running with the old certificate never does.
func waitServed(ctx context.Context, h *Host, addr, file string, interval, timeout time.Duration) (*x509.Certificate, error) {
	want, err := h.ReadFile(ctx, file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	wantCert, err := pki.ParseCertificate(want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var served *x509.Certificate
	err = kubeapi.Poll(ctx, interval, timeout, addr+" to serve the certificate in "+file, func(ctx context.Context) (bool, string, error) {
		cert, err := servedCertificate(ctx, h.Runner(), addr)
		if err != nil {
			return false, err.Error(), nil
		}
		if !bytes.Equal(cert.Raw, wantCert.Raw) {
			return false, fmt.Sprintf("it serves a certificate valid until %s, not the one in the file (valid until %s)", cert.NotAfter.UTC().Format(time.RFC3339), wantCert.NotAfter.UTC().Format(time.RFC3339)), nil
		}
		served = cert
		return true, "", nil
	})
	return served, err
}

// servedCertificate is the leaf certificate a TLS server at addr presents, dialled from the host's
// side. It is only read, never trusted: no request is sent. A server that then wants a client
// certificate (etcd) fails the handshake after presenting its own, which is all this needs.
func servedCertificate(ctx context.Context, d ssh.Runner, addr string) (*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var leaf *x509.Certificate
	cfg := &tls.Config{
		// The certificate is compared byte for byte with the file afterwards; nothing is sent.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no certificate")
			}
			c, err := x509.ParseCertificate(raw[0])
			leaf = c
			return err
		},
	}
	tc := tls.Client(conn, cfg)
	herr := tc.HandshakeContext(ctx)
	if leaf == nil {
		return nil, fmt.Errorf("TLS handshake with %s: %v", addr, herr)
	}
	return leaf, nil
}
