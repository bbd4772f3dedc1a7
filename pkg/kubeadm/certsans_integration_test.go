package kubeadm

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/versions"
)

// TestCertSANsInPractice: kubeadm (the real binary) adopts a CA from pkg/pki and issues the apiserver
// certificate from the rendered init configuration; a TLS server on 127.0.0.1 serves it, and clients
// that trust only our CA verify it under every name clients use (VIP, public IP, endpoint name, a
// control plane's name and private address) while never dialling those addresses. A name outside the
// SANs fails.
func TestCertSANsInPractice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	for _, r := range versions.Releases() {
		t.Run(r.Kubernetes, func(t *testing.T) {
			bin, err := build.New(build.Options{}).Binary(ctx, "kubeadm", r.Kubernetes)
			if err != nil {
				t.Fatalf("build kubeadm: %v", err)
			}
			c, err := v1alpha1.LoadFile("../../configs/ha-keepalived-haproxy.yaml")
			if err != nil {
				t.Fatal(err)
			}
			c.Default()
			s := &c.Spec
			s.KubernetesVersion = r.Kubernetes

			dir := t.TempDir()
			pkiDir := filepath.Join(dir, "pki")
			bundle, err := pki.LoadOrGenerate(pkiDir, pki.Options{})
			if err != nil {
				t.Fatal(err)
			}
			caBefore := bytes.Clone(bundle.Cluster.CertPEM)
			token, err := GenerateToken()
			if err != nil {
				t.Fatal(err)
			}
			h := s.ControlPlanes()[0]
			cfg, err := Render(Input{Spec: s, Host: h, Facts: facts.Assumed(s, h), Token: token})
			if err != nil {
				t.Fatal(err)
			}
			// Point kubeadm at the temporary pki directory (its default is /etc/kubernetes/pki).
			cfg = bytes.Replace(cfg, []byte("kind: ClusterConfiguration\n"), []byte("kind: ClusterConfiguration\ncertificatesDir: "+pkiDir+"\n"), 1)
			cfgPath := filepath.Join(dir, "kubeadm.yaml")
			if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, bin, "init", "phase", "certs", "apiserver", "--config", cfgPath).CombinedOutput()
			if err != nil {
				t.Fatalf("kubeadm init phase certs apiserver: %v\n%s", err, out)
			}
			// kubeadm signed with our CA (not a new one): the file is unchanged and the clients below
			// trust nothing else.
			if after, _ := os.ReadFile(filepath.Join(pkiDir, "ca.crt")); !bytes.Equal(after, caBefore) {
				t.Fatal("kubeadm replaced the CA")
			}
			serving, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "apiserver.crt"), filepath.Join(pkiDir, "apiserver.key"))
			if err != nil {
				t.Fatal(err)
			}
			addr := serveTLS(t, serving)
			roots := x509.NewCertPool()
			roots.AddCert(bundle.Cluster.Cert)
			for _, name := range []string{"10.0.0.100", "203.0.113.100", "api.k8s.example.com", "203.0.113.12", "10.0.0.13", "cp3", "localhost", "127.0.0.1"} {
				if err := dialAs(addr, name, roots); err != nil {
					t.Errorf("ServerName %s: %v", name, err)
				}
			}
			for _, name := range []string{"evil.example.com", "10.0.0.21", "w1"} {
				err := dialAs(addr, name, roots)
				var hostErr x509.HostnameError
				if err == nil || !errors.As(err, &hostErr) {
					t.Errorf("ServerName %s outside the SANs: got %v, want a hostname error", name, err)
				}
			}
			// Another CA's clients refuse the certificate.
			other, err := pki.NewCA(pki.ClusterCA, pki.Options{})
			if err != nil {
				t.Fatal(err)
			}
			otherRoots := x509.NewCertPool()
			otherRoots.AddCert(other.Cert)
			if err := dialAs(addr, "10.0.0.100", otherRoots); err == nil {
				t.Error("a client trusting another CA accepted the certificate")
			}
		})
	}
}

func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte("ok"))
			}(conn)
		}
	}()
	return ln.Addr().String()
}

// dialAs connects to addr (always 127.0.0.1) and verifies the server as serverName.
func dialAs(addr, serverName string, roots *x509.CertPool) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: roots, MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	return conn.Close()
}
