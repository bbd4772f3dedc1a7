package phases

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
)

// TestCertsScriptNeverPrintsAKey runs the real certs.sh over a kubelet client file (certificate and
// key in one), a kubeconfig with an embedded client key, a plain certificate and a missing file: the
// output holds the certificates only, and parseCerts with ExpiryReport reads them back.
func TestCertsScriptNeverPrintsAKey(t *testing.T) {
	b := testPKI(t)
	dir := t.TempDir()
	leaf := func(cn string, days int) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Duration(days) * 24 * time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, b.Cluster.Cert, key.Public(), b.Cluster.Key)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	kubeletCert, kubeletKey := leaf("system:node:w1", 300)
	adminCert, adminKey := leaf("kubernetes-admin", 10)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kubelet := write("kubelet-client-current.pem", append(append([]byte{}, kubeletCert...), kubeletKey...))
	admin := write("admin.conf", []byte("apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n    client-certificate-data: "+
		base64.StdEncoding.EncodeToString(adminCert)+"\n    client-key-data: "+base64.StdEncoding.EncodeToString(adminKey)+"\n"))
	ca := write("ca.crt", b.Cluster.CertPEM)

	argv := scripts.Certs.Args(admin, ca, filepath.Join(dir, "missing.crt"), kubelet)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("certs.sh: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "PRIVATE KEY") || strings.Contains(string(out), base64.StdEncoding.EncodeToString(adminKey)) || strings.Contains(string(out), "missing.crt") {
		t.Fatalf("certs.sh printed a key or a missing file:\n%s", out)
	}
	certs, err := parseCerts("w1", string(out))
	if err != nil {
		t.Fatal(err)
	}
	report := pki.ExpiryReport(certs, time.Now(), 30*24*time.Hour, b.Signer)
	if len(report) != 3 {
		t.Fatalf("%d findings: %+v", len(report), report)
	}
	want := []struct{ path, subject, ca string }{
		{admin, "kubernetes-admin", "ca"},
		{kubelet, "system:node:w1", "ca"},
		{ca, "kubernetes", "ca (itself)"},
	}
	for i, w := range want {
		f := report[i]
		if f.Host != "w1" || f.Path != w.path || f.Subject != w.subject || f.CA != w.ca {
			t.Errorf("finding %d = %+v, want %+v", i, f, w)
		}
	}
	if report[0].Status != pki.StatusExpiring || report[1].Status != pki.StatusOK {
		t.Errorf("statuses %s %s", report[0].Status, report[1].Status)
	}
}
