// Package testapiserver starts a real etcd and kube-apiserver, built by lab/build, on loopback for
// tests that need a real API server (rendered manifests, server-side apply, RBAC, polling). It is
// test support: never imported by the product.
package testapiserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/pkg/versions"
)

// Server is a running API server with an admin identity (group system:masters).
type Server struct {
	Config *rest.Config
	Client kubernetes.Interface
	// Addr is host:port of the secure port; its certificate is valid for 127.0.0.1.
	Addr string
	// Kubeconfig is an admin kubeconfig for it, like kubeadm's admin.conf.
	Kubeconfig []byte
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type testCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCert(t testing.TB, tmpl *x509.Certificate, parent *testCert) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: c, key: key}
}

func (c testCert) pem(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	kd, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startProcess runs a binary until the test ends, its output in a log file shown on failure.
func startProcess(t testing.TB, dir, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s log tail:\n%s", name, b)
		}
	})
}

// Start builds (or finds cached) etcd and kube-apiserver of the default release (the lab builds it too)
// and starts them on random loopback ports with certificates made here. It fails, never skips,
// when the binaries cannot be built.
func Start(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	version := versions.Default().Kubernetes
	b := build.New(build.Options{})
	etcd, err := b.Binary(ctx, "etcd", version)
	if err != nil {
		t.Fatalf("build etcd: %v", err)
	}
	apiserver, err := b.Binary(ctx, "kube-apiserver", version)
	if err != nil {
		t.Fatalf("build kube-apiserver: %v", err)
	}

	dir := t.TempDir()
	ca := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil)
	serving := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, &ca)
	admin := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "test-admin", Organization: []string{"system:masters"}},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, &ca)
	sa := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "sa"}}, &ca)

	caPEM, _ := ca.pem(t)
	servingPEM, servingKey := serving.pem(t)
	adminPEM, adminKey := admin.pem(t)
	_, saKey := sa.pem(t)
	writeFile(t, filepath.Join(dir, "ca.crt"), caPEM)
	writeFile(t, filepath.Join(dir, "apiserver.crt"), servingPEM)
	writeFile(t, filepath.Join(dir, "apiserver.key"), servingKey)
	writeFile(t, filepath.Join(dir, "sa.key"), saKey)

	clientPort, peerPort, securePort := freePort(t), freePort(t), freePort(t)
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	startProcess(t, dir, "etcd", etcd, "--name=test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=test="+peerURL,
		"--listen-metrics-urls=", "--log-level=warn")
	startProcess(t, dir, "kube-apiserver", apiserver,
		"--etcd-servers="+clientURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		// 1.37 refuses a loopback advertise address unless nothing reconciles the kubernetes
		// Service's endpoints from it (measured); tests need no such endpoints.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(securePort), "--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+filepath.Join(dir, "apiserver.crt"), "--tls-private-key-file="+filepath.Join(dir, "apiserver.key"),
		"--client-ca-file="+filepath.Join(dir, "ca.crt"), "--authorization-mode=Node,RBAC",
		// As kubeadm runs it: CNI agents such as calico-node are privileged.
		"--allow-privileged=true",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"), "--service-cluster-ip-range=10.96.0.0/12")

	cfg := &rest.Config{Host: fmt.Sprintf("https://127.0.0.1:%d", securePort),
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: adminPEM, KeyData: adminKey}}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		if err == nil && string(body) == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver not ready after 2m: %v %s", err, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Pods need their service account; no controller-manager runs to create kube-system/default.
	_, err = client.CoreV1().ServiceAccounts("kube-system").Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return &Server{Config: cfg, Client: client, Addr: fmt.Sprintf("127.0.0.1:%d", securePort), Kubeconfig: kubeconfig(cfg)}
}

// kubeconfig renders an admin kubeconfig like kubeadm's admin.conf for the server.
func kubeconfig(cfg *rest.Config) []byte {
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: test-admin
  user: {client-certificate-data: %s, client-key-data: %s}
contexts:
- name: test-admin@test
  context: {cluster: test, user: test-admin}
current-context: test-admin@test
`, cfg.Host, b64(cfg.TLSClientConfig.CAData), b64(cfg.TLSClientConfig.CertData), b64(cfg.TLSClientConfig.KeyData)))
}
