package manifests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/pkg/versions"
)

// testAPIServer is a real etcd and kube-apiserver built by lab/build, listening on loopback.
type testAPIServer struct {
	config *rest.Config
	client kubernetes.Interface
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func freePort(t *testing.T) int {
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

func newCert(t *testing.T, tmpl *x509.Certificate, parent *testCert) testCert {
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

func (c testCert) pem(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	kd, err := x509.MarshalECPrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startProcess runs a binary until the test ends, its output in a log file shown on failure.
func startProcess(t *testing.T, dir, name, bin string, args ...string) {
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

// startAPIServer builds (or finds cached) etcd and kube-apiserver of the oldest supported release
// and starts them on random loopback ports with certificates made here. It fails, never skips,
// when the binaries cannot be built.
func startAPIServer(t *testing.T) *testAPIServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	version := versions.Oldest().Kubernetes
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
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Pods need their service account; no controller-manager runs to create kube-system/default.
	_, err = client.CoreV1().ServiceAccounts("kube-system").Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return &testAPIServer{config: cfg, client: client, dyn: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))}
}

// apply server-side applies one object; dryRun leaves nothing behind.
func (s *testAPIServer) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", gvk, err)
	}
	var r dynamic.ResourceInterface = s.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		r = s.dyn.Resource(m.Resource).Namespace(ns)
	}
	opts := metav1.ApplyOptions{FieldManager: "installer", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = r.Apply(ctx, u.GetName(), u, opts)
	return err
}

// TestAPIServerAcceptsRenderedManifests applies every rendered cluster file (cni.yaml, ccm.yaml,
// addons) and every static pod of every spec to a real kube-apiserver with server-side dry-run.
// Namespaces are created for real first (a dry-run namespace does not exist for the objects in it).
func TestAPIServerAcceptsRenderedManifests(t *testing.T) {
	s := startAPIServer(t)
	ctx := context.Background()
	for _, sp := range specFiles(t) {
		t.Run(goldenName(sp), func(t *testing.T) {
			r := renderSpec(t, sp)
			var objs []*unstructured.Unstructured
			for name, f := range r.tree() {
				if !strings.HasPrefix(name, "cluster/") && !strings.Contains(name, "/etc/kubernetes/manifests/") {
					continue
				}
				o, err := DecodeManifest(f.Content)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				objs = append(objs, o...)
			}
			if len(objs) == 0 {
				t.Fatal("nothing to apply")
			}
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					if err := s.apply(ctx, o, false); err != nil {
						t.Fatalf("namespace %s: %v", o.GetName(), err)
					}
				}
			}
			for _, o := range objs {
				if err := s.apply(ctx, o, true); err != nil {
					t.Errorf("%s %s/%s: the API server refused it: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
			t.Logf("%d objects accepted", len(objs))
		})
	}
	t.Run("ccm-rbac", func(t *testing.T) { testCCMRBAC(t, s) })
}

// testCCMRBAC applies the custom CCM's manifest for real and asks the API server's authorizer
// whether the CCM's service account may do what the cloud-controller-manager does.
func testCCMRBAC(t *testing.T, s *testAPIServer) {
	ctx := context.Background()
	r := renderSpec(t, "testdata/specs/ccm-custom.yaml")
	var ccm File
	for _, f := range r.cluster {
		if f.Path == "ccm.yaml" {
			ccm = f
		}
	}
	objs, err := DecodeManifest(ccm.Content)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" {
			continue // no pods are wanted, only the RBAC
		}
		if err := s.apply(ctx, o, false); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	const user = "system:serviceaccount:kube-system:cloud-controller-manager"
	type check struct {
		group, resource, sub, verb, ns, name string
		allowed                              bool
	}
	var checks []check
	add := func(allowed bool, group, resource, sub, ns, name string, verbs ...string) {
		for _, v := range verbs {
			checks = append(checks, check{group, resource, sub, v, ns, name, allowed})
		}
	}
	add(true, "", "nodes", "", "", "", "get", "list", "watch", "update", "patch", "delete")
	add(true, "", "nodes", "status", "", "", "patch")
	add(true, "", "services", "", "", "", "list", "watch", "patch", "update")
	add(true, "", "services", "status", "", "", "patch")
	add(true, "", "events", "", "default", "", "create", "patch", "update")
	add(true, "", "serviceaccounts", "", "kube-system", "node-controller", "get", "create")
	add(true, "", "serviceaccounts", "token", "kube-system", "node-controller", "create")
	add(true, "", "persistentvolumes", "", "", "", "get", "list", "watch", "update")
	add(true, "", "endpoints", "", "kube-system", "", "create", "get", "list", "watch", "update")
	add(true, "coordination.k8s.io", "leases", "", "kube-system", "cloud-controller-manager", "get", "create", "update")
	add(true, "", "configmaps", "", "kube-system", "extension-apiserver-authentication", "get", "list", "watch")
	// Least privilege: nothing beyond that.
	add(false, "", "secrets", "", "kube-system", "", "get", "list")
	add(false, "", "pods", "", "kube-system", "", "create", "delete")
	add(false, "", "serviceaccounts", "", "kube-system", "", "delete")

	deadline := time.Now().Add(30 * time.Second)
	for _, c := range checks {
		for {
			sar, err := s.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
					Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
					ResourceAttributes: &authorizationv1.ResourceAttributes{Group: c.group, Resource: c.resource,
						Subresource: c.sub, Verb: c.verb, Namespace: c.ns, Name: c.name}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed == c.allowed {
				break
			}
			// The RBAC authorizer sees new bindings through its informers, a moment later.
			if time.Now().After(deadline) {
				t.Errorf("%s %s/%s %s in %q: allowed=%t, want %t (%s)", c.verb, c.resource, c.sub, c.name, c.ns, sar.Status.Allowed, c.allowed, sar.Status.Reason)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("%d access reviews answered as expected", len(checks))
}
