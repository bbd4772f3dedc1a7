package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// leaf issues a certificate from ca valid until notAfter.
func leaf(t *testing.T, ca KeyPair, cn string, notAfter time.Time) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestExpiryReport(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ca, err := NewCA(ClusterCA, Options{Now: func() time.Time { return now.Add(-24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	apiserver := leaf(t, ca, "kube-apiserver", now.Add(200*24*time.Hour))
	soon := leaf(t, ca, "front-proxy-client", now.Add(10*24*time.Hour))
	expired := leaf(t, ca, "kube-apiserver-etcd-client", now.Add(-time.Hour))
	admin := leaf(t, ca, "kubernetes-admin", now.Add(20*24*time.Hour))
	kubeconfig := []byte("apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: " +
		base64.StdEncoding.EncodeToString(admin) + "\n    client-key-data: c2VjcmV0\n")
	// kubelet-client-current.pem holds the certificate and its key; the key is skipped.
	withKey := append(append([]byte{}, soon...), []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")...)

	got := ExpiryReport([]HostCert{
		{Host: "cp2", Path: "/etc/kubernetes/pki/apiserver.crt", Data: apiserver},
		{Host: "cp1", Path: "/etc/kubernetes/pki/apiserver.crt", Data: apiserver},
		{Host: "cp1", Path: "/etc/kubernetes/pki/front-proxy-client.crt", Data: soon},
		{Host: "w1", Path: "/var/lib/kubelet/pki/kubelet-client-current.pem", Data: withKey},
		{Host: "cp1", Path: "/etc/kubernetes/pki/apiserver-etcd-client.crt", Data: expired},
		{Host: "cp1", Path: "/etc/kubernetes/admin.conf", Data: kubeconfig},
		{Host: "cp1", Path: "/etc/kubernetes/pki/ca.crt", Data: ca.CertPEM},
		{Host: "cp3", Path: "/etc/kubernetes/pki/apiserver.crt", Data: []byte("garbage")},
	}, now, 30*24*time.Hour, nil)

	want := []struct {
		host, path, subject string
		status              Status
	}{
		{"cp3", "/etc/kubernetes/pki/apiserver.crt", "", StatusInvalid},
		{"cp1", "/etc/kubernetes/pki/apiserver-etcd-client.crt", "kube-apiserver-etcd-client", StatusExpired},
		{"cp1", "/etc/kubernetes/pki/front-proxy-client.crt", "front-proxy-client", StatusExpiring},
		{"w1", "/var/lib/kubelet/pki/kubelet-client-current.pem", "front-proxy-client", StatusExpiring},
		{"cp1", "/etc/kubernetes/admin.conf", "kubernetes-admin", StatusExpiring},
		{"cp1", "/etc/kubernetes/pki/apiserver.crt", "kube-apiserver", StatusOK},
		{"cp2", "/etc/kubernetes/pki/apiserver.crt", "kube-apiserver", StatusOK},
		{"cp1", "/etc/kubernetes/pki/ca.crt", "kubernetes", StatusOK},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d findings: %+v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Host != w.host || g.Path != w.path || g.Subject != w.subject || g.Status != w.status {
			t.Errorf("finding %d: %s %s %q %s, want %s %s %q %s", i, g.Host, g.Path, g.Subject, g.Status, w.host, w.path, w.subject, w.status)
		}
	}
	if got[1].Remaining != -time.Hour {
		t.Errorf("remaining %v", got[1].Remaining)
	}
	if got[0].Problem == "" {
		t.Error("invalid finding without a problem")
	}
	if len(ControlPlaneCertPaths()) == 0 {
		t.Error("no control-plane paths")
	}
	if got[5].CA != "kubernetes" {
		t.Errorf("CA without a signer: %q, want the issuer's name", got[5].CA)
	}
}

// TestSigner names the bundle's CA that signed a certificate, and refuses a look-alike: a CA of the
// same name that is not the cluster's.
func TestSigner(t *testing.T) {
	now := time.Now()
	b, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(ClusterCA, Options{})
	if err != nil {
		t.Fatal(err)
	}
	parse := func(p []byte) *x509.Certificate {
		block, _ := pem.Decode(p)
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		cert []byte
		want string
	}{
		{leaf(t, b.Cluster, "kube-apiserver", now.Add(time.Hour)), "ca"},
		{leaf(t, b.Etcd, "cp1", now.Add(time.Hour)), "etcd/ca"},
		{leaf(t, b.FrontProxy, "front-proxy-client", now.Add(time.Hour)), "front-proxy-ca"},
		{b.Cluster.CertPEM, "ca (itself)"},
		{leaf(t, other, "kube-apiserver", now.Add(time.Hour)), "issuer kubernetes, not this cluster's"},
	} {
		got, ours := b.Signer(parse(tc.cert))
		if got != tc.want || ours != !strings.Contains(tc.want, "not this cluster's") {
			t.Errorf("Signer = %q %v, want %q", got, ours, tc.want)
		}
	}
	foreign := ExpiryReport([]HostCert{{Host: "cp1", Path: "/etc/kubernetes/pki/apiserver.crt", Data: leaf(t, other, "kube-apiserver", now.Add(400*24*time.Hour))},
		{Host: "cp1", Path: "/etc/kubernetes/pki/ca.crt", Data: b.Cluster.CertPEM}}, now, time.Hour, b.Signer)
	if len(foreign) != 2 || foreign[0].Status != StatusForeign || foreign[1].Status != StatusOK {
		t.Errorf("foreign certificate: %+v", foreign)
	}
}
