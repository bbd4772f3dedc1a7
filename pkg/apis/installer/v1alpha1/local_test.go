package v1alpha1

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckLocalInputs(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := writeFile(t, dir, "id_ed25519", pem.EncodeToMemory(block))
	encBlock, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	encKey := writeFile(t, dir, "id_encrypted", pem.EncodeToMemory(encBlock))
	sshPub, _ := ssh.NewPublicKey(priv.Public())
	pub := writeFile(t, dir, "id_ed25519.pub", ssh.MarshalAuthorizedKey(sshPub))
	known := writeFile(t, dir, "known_hosts", []byte("[10.0.0.1]:22 "+string(ssh.MarshalAuthorizedKey(sshPub))))

	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mirror-ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	notCA := writeFile(t, dir, "not-ca.pem", []byte("hello"))
	cloudConf := writeFile(t, dir, "cloud.conf", []byte("[Global]\n"))
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o700); err != nil {
		t.Fatal(err)
	}

	// A test-only OpenPGP key (pkg/pgpkey's test data), fingerprint A2C2 E4FA ... F88E.
	testRepoKey, err := filepath.Abs("../../../pgpkey/testdata/one.asc")
	if err != nil {
		t.Fatal(err)
	}
	base := func() *Cluster {
		c := &Cluster{Spec: ClusterSpec{
			SSH:   SSH{KeyFile: key, KnownHostsFile: known},
			Hosts: []Host{{Name: "cp1", Address: "10.0.0.1", Role: RoleControlPlane}},
		}}
		c.Default()
		return c
	}
	tests := []struct {
		name   string
		mutate func(c *Cluster)
		want   []string // substrings, one per expected error, in order
	}{
		{"all good", func(c *Cluster) {
			c.Spec.Images.Mirrors = map[string][]MirrorEndpoint{"registry.k8s.io": {{URL: "https://m", CAFile: ca}}}
			c.Spec.CloudProvider = CloudProvider{Name: CloudOpenStack, CloudConfigFile: cloudConf}
			c.Spec.Install = Install{Source: InstallBundle, BundleDir: bundle}
		}, nil},
		{"encrypted key is fine", func(c *Cluster) { c.Spec.SSH.KeyFile = encKey }, nil},
		{"missing key", func(c *Cluster) { c.Spec.SSH.KeyFile = filepath.Join(dir, "nope") }, []string{"spec.ssh.keyFile: Invalid value: \"" + dir + "/nope\": file does not exist"}},
		{"public key given", func(c *Cluster) { c.Spec.SSH.KeyFile = pub }, []string{"spec.ssh.keyFile: Invalid value: \"" + pub + "\": is a public key; name the private key (without .pub)"}},
		{"garbage key", func(c *Cluster) { c.Spec.SSH.KeyFile = notCA }, []string{"spec.ssh.keyFile: Invalid value: \"" + notCA + "\": not a private key"}},
		{"host key override", func(c *Cluster) { c.Spec.Hosts[0].SSH = &HostSSH{KeyFile: cloudConf} }, []string{"spec.hosts[0].ssh.keyFile: Invalid value"}},
		{"strict needs known_hosts", func(c *Cluster) { c.Spec.SSH.KnownHostsFile = filepath.Join(dir, "kh") }, []string{"spec.ssh.knownHostsFile: Invalid value: \"" + dir + "/kh\": file does not exist; host keys are verified"}},
		{"accept-new may create known_hosts", func(c *Cluster) {
			c.Spec.SSH.HostKeyPolicy = HostKeyAcceptNew
			c.Spec.SSH.KnownHostsFile = filepath.Join(dir, "new_known_hosts")
		}, nil},
		{"accept-new needs its directory", func(c *Cluster) {
			c.Spec.SSH.HostKeyPolicy = HostKeyAcceptNew
			c.Spec.SSH.KnownHostsFile = filepath.Join(dir, "missing", "kh")
		}, []string{"spec.ssh.knownHostsFile: Invalid value: \"" + dir + "/missing/kh\": directory " + dir + "/missing does not exist"}},
		{"bad CA", func(c *Cluster) {
			c.Spec.Images.Mirrors = map[string][]MirrorEndpoint{"docker.io": {{URL: "https://m", CAFile: notCA}}}
		}, []string{"spec.images.mirrors[docker.io][0].caFile: Invalid value: \"" + notCA + "\": holds no PEM certificate"}},
		{"bundle dir missing and cloud config a directory", func(c *Cluster) {
			c.Spec.Install = Install{Source: InstallBundle, BundleDir: filepath.Join(dir, "nobundle")}
			c.Spec.CloudProvider = CloudProvider{Name: CloudOpenStack, CloudConfigFile: bundle}
		}, []string{"spec.install.bundleDir: Invalid value: \"" + dir + "/nobundle\": not a directory", "spec.cloudProvider.cloudConfigFile: Invalid value: \"" + bundle + "\": is a directory, not a file"}},
		{"repository key not OpenPGP", func(c *Cluster) { c.Spec.Install.PackageRepositoryKeyFile = cloudConf }, []string{"spec.install.packageRepositoryKeyFile: Invalid value: \"" + cloudConf + "\": not an OpenPGP public key"}},
		{"repository key matching its pin", func(c *Cluster) {
			c.Spec.Install.PackageRepositoryKeyFile = testRepoKey
			c.Spec.Install.PackageRepositoryKeyFingerprint = "A2C2 E4FA C3BE 86F6 F8EE  AE06 6906 F43D 3930 F88E"
		}, nil},
		{"repository key not matching its pin", func(c *Cluster) {
			c.Spec.Install.PackageRepositoryKeyFile = testRepoKey
			c.Spec.Install.PackageRepositoryKeyFingerprint = "DE15B14486CD377B9E876E1A234654DA9A296436"
		}, []string{"spec.install.packageRepositoryKeyFile: Invalid value: \"" + testRepoKey + "\": its key's fingerprint is A2C2E4FAC3BE86F6F8EEAE066906F43D3930F88E, but packageRepositoryKeyFingerprint pins DE15B14486CD377B9E876E1A234654DA9A296436"}},
		{"checksums file that parses", func(c *Cluster) {
			c.Spec.Install.ChecksumsFile = writeFile(t, dir, "pins.sha256", []byte("# pins\n"+strings.Repeat("a", 64)+"  release/v1.37.2/bin/linux/amd64/kubeadm\n"))
		}, nil},
		{"checksums file with a mirror URL", func(c *Cluster) {
			c.Spec.Install.ChecksumsFile = writeFile(t, dir, "bad-pins.sha256", []byte(strings.Repeat("a", 64)+"  http://m/release/v1.37.2/bin/linux/amd64/kubeadm\n"))
		}, []string{"spec.install.checksumsFile: Invalid value: \"" + dir + "/bad-pins.sha256\": line 1: \"http://m/release/v1.37.2/bin/linux/amd64/kubeadm\" must be a path in upstream's layout"}},
		{"checksums file missing", func(c *Cluster) { c.Spec.Install.ChecksumsFile = filepath.Join(dir, "none.sha256") },
			[]string{"spec.install.checksumsFile: Invalid value: \"" + dir + "/none.sha256\": file does not exist"}},
		{"local addon and manifest missing, URLs not checked", func(c *Cluster) {
			c.Spec.CNI = CNI{Plugin: CNICustom, Manifest: filepath.Join(dir, "cni.yaml")}
			c.Spec.Addons = []Addon{{Manifest: "https://example.com/a.yaml"}, {Manifest: filepath.Join(dir, "addon.yaml")}}
		}, []string{"spec.cni.manifest: Invalid value: \"" + dir + "/cni.yaml\": file does not exist", "spec.addons[1].manifest: Invalid value: \"" + dir + "/addon.yaml\": file does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(c)
			errs := CheckLocalInputs(c)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), errs.ToAggregate())
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q\nwant prefix %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestResolvePaths(t *testing.T) {
	c := &Cluster{Spec: ClusterSpec{
		SSH:     SSH{KeyFile: "~/.ssh/id", KnownHostsFile: "keys/known_hosts", Bastion: &Bastion{KeyFile: "/abs/key"}},
		CNI:     CNI{Manifest: "https://example.com/cni.yaml"},
		Addons:  []Addon{{Manifest: "addons/a.yaml"}, {Manifest: "http://example.com/b.yaml"}},
		Install: Install{BundleDir: "../bundle"},
	}}
	c.ResolvePaths("/specs/prod", "/home/op")
	got := []string{c.Spec.SSH.KeyFile, c.Spec.SSH.KnownHostsFile, c.Spec.SSH.Bastion.KeyFile, c.Spec.CNI.Manifest, c.Spec.Addons[0].Manifest, c.Spec.Addons[1].Manifest, c.Spec.Install.BundleDir}
	want := []string{"/home/op/.ssh/id", "/specs/prod/keys/known_hosts", "/abs/key", "https://example.com/cni.yaml", "/specs/prod/addons/a.yaml", "http://example.com/b.yaml", "/specs/bundle"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("path %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestCheckEnvironment(t *testing.T) {
	c := &Cluster{Spec: ClusterSpec{SSH: SSH{PasswordEnv: "SSH_PASS"},
		CloudProvider: CloudProvider{Name: CloudHetzner, CredentialsEnv: map[string]string{"token": "HCLOUD_TOKEN"}}}}
	env := map[string]string{"SSH_PASS": "x"}
	errs := CheckEnvironment(c, func(k string) string { return env[k] })
	if len(errs) != 1 || errs[0].Error() != `spec.cloudProvider.credentialsEnv[token]: Invalid value: "HCLOUD_TOKEN": environment variable is not set (it holds the cloud credential token)` {
		t.Fatalf("errs = %v", errs.ToAggregate())
	}
}
