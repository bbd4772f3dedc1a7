//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkCertsAgainstKubeadm runs `installer certs check -o json` and compares it with what kubeadm
// itself reports on cp1 (`kubeadm certs check-expiration -o json`): the same certificates, expiry
// dates and CAs; every node's kubelet client certificate is listed too, and nothing is reported bad.
func checkCertsAgainstKubeadm(t *testing.T, c *labCluster, nodes ...string) {
	t.Helper()
	r := c.installer("certs", "check", "-o", "json")
	if r.Code != 0 {
		errorf(t, "certs check: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
		return
	}
	t.Logf("MEASURE certs check: %s", r.Wall.Round(time.Millisecond))
	var ours []struct {
		Host, Path, Subject, CA, NotAfter, Status string
		DaysLeft                                  int
	}
	if err := json.Unmarshal([]byte(r.Stdout), &ours); err != nil {
		errorf(t, "certs check -o json: %v\n%s", err, r.Stdout)
		return
	}
	byPath := map[string]string{}   // cp1's path -> notAfter
	caByPath := map[string]string{} // cp1's path -> CA
	kubelets := map[string]bool{}
	for _, f := range ours {
		if f.Status != "ok" {
			errorf(t, "certs check: %s %s is %s", f.Host, f.Path, f.Status)
		}
		if f.Host == "cp1" {
			byPath[f.Path], caByPath[f.Path] = f.NotAfter, f.CA
		}
		if strings.HasSuffix(f.Path, "kubelet-client-current.pem") {
			kubelets[f.Host] = true
		}
	}
	for _, n := range nodes {
		if !kubelets[n] {
			errorf(t, "certs check lists no kubelet client certificate of %s", n)
		}
	}
	out, err := sshRun(c.ctx, c.Lab, "cp1", "sudo kubeadm certs check-expiration -o json")
	if err != nil {
		errorf(t, "kubeadm certs check-expiration: %v\n%s", err, out)
		return
	}
	var theirs struct {
		Certificates []struct {
			Name                 string `json:"name"`
			ExpirationDate       string `json:"expirationDate"`
			CertificateAuthority string `json:"caName"`
			Missing              bool   `json:"missing"`
		} `json:"certificates"`
		CertificateAuthorities []struct {
			Name           string `json:"name"`
			ExpirationDate string `json:"expirationDate"`
		} `json:"certificateAuthorities"`
	}
	if err := json.Unmarshal([]byte(out), &theirs); err != nil {
		errorf(t, "kubeadm's JSON: %v\n%s", err, out)
		return
	}
	path := func(name string) string {
		if strings.HasSuffix(name, ".conf") {
			return "/etc/kubernetes/" + name
		}
		if rest, ok := strings.CutPrefix(name, "etcd-"); ok {
			return "/etc/kubernetes/pki/etcd/" + rest + ".crt"
		}
		return "/etc/kubernetes/pki/" + name + ".crt"
	}
	ca := map[string]string{"ca": "ca", "etcd-ca": "etcd/ca", "front-proxy-ca": "front-proxy-ca"}
	same := func(name, theirDate, ourPath string) {
		ourDate, ok := byPath[ourPath]
		if !ok {
			errorf(t, "kubeadm reports %s; certs check has no %s on cp1", name, ourPath)
			return
		}
		td, err1 := time.Parse(time.RFC3339, theirDate)
		od, err2 := time.Parse(time.RFC3339, ourDate)
		if err1 != nil || err2 != nil || !td.Equal(od) {
			errorf(t, "%s: kubeadm says it expires %s, certs check %s", name, theirDate, ourDate)
		}
	}
	compared := 0
	for _, cert := range theirs.Certificates {
		if cert.Missing {
			continue
		}
		p := path(cert.Name)
		same(cert.Name, cert.ExpirationDate, p)
		if want := ca[cert.CertificateAuthority]; caByPath[p] != want {
			errorf(t, "%s: kubeadm names CA %s, certs check %q", cert.Name, cert.CertificateAuthority, caByPath[p])
		}
		compared++
	}
	for _, a := range theirs.CertificateAuthorities {
		same(a.Name, a.ExpirationDate, path(a.Name))
		compared++
	}
	t.Logf("certs check agrees with kubeadm certs check-expiration on cp1 for %d certificates (%d listed in all)", compared, len(ours))
	if compared < 12 {
		errorf(t, "only %d of kubeadm's certificates compared:\n%s", compared, out)
	}
}

// checkEtcdBackups takes two on-demand etcd snapshots with --keep 1: one remains, 0600, with its
// .sha256, and `etcd snapshots` verifies it.
func checkEtcdBackups(t *testing.T, c *labCluster) {
	t.Helper()
	var saved []string
	for i := 0; i < 2; i++ {
		r := c.installer("etcd", "snapshot", "--keep", "1")
		if r.Code != 0 {
			errorf(t, "etcd snapshot: exit %d\n%s", r.Code, r.Stderr)
			return
		}
		t.Logf("MEASURE etcd snapshot %d: %s (%s)", i+1, r.Wall.Round(time.Millisecond), strings.TrimSpace(r.Stdout))
		saved = append(saved, strings.TrimSpace(r.Stdout))
	}
	dir := filepath.Join(c.Lab.StateDir(), "etcd-snapshots")
	entries, err := os.ReadDir(dir)
	if err != nil {
		errorf(t, "%v", err)
		return
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if info, err := e.Info(); err != nil || info.Mode().Perm() != 0o600 {
			errorf(t, "%s: mode %v (%v), want 0600", e.Name(), info.Mode().Perm(), err)
		}
	}
	if want := []string{filepath.Base(saved[1]), filepath.Base(saved[1]) + ".sha256"}; strings.Join(names, " ") != strings.Join(want, " ") {
		errorf(t, "snapshots after two with --keep 1: %v, want %v", names, want)
	}
	list := c.installer("etcd", "snapshots")
	if list.Code != 0 || !strings.Contains(list.Stdout, "backup") || !strings.Contains(list.Stdout, " ok ") {
		errorf(t, "etcd snapshots: exit %d\n%s\n%s", list.Code, list.Stdout, list.Stderr)
	}
}
