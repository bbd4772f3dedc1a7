package simhost_test

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"installer.dev/installer/pkg/install"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"installer.dev/installer/pkg/phases/internal/simhost"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// TestOnlyTestsImportIt: the simulator is for tests; no product code may depend on it.
func TestOnlyTestsImportIt(t *testing.T) {
	root := filepath.Join("..", "..", "..", "..")
	const self = "installer.dev/installer/pkg/phases/internal/simhost"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		if dir, _ := filepath.Abs(filepath.Dir(p)); strings.HasSuffix(filepath.ToSlash(dir), "/pkg/phases/internal/simhost") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == self {
				t.Errorf("%s imports the test simulator", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, h *simhost.Host, argv ...string) (ssh.Result, error) {
	t.Helper()
	return h.Run(context.Background(), ssh.Cmd{Args: argv})
}

// TestDispatch: scripts answer by name, commands by their leading words, anything else fails
// naming the command; an injected failure hits the first command at its step, once.
func TestDispatch(t *testing.T) {
	h := simhost.New("h1", "10.0.0.1")
	if res, err := run(t, h, scripts.UnitState.Args("containerd")...); err != nil || string(res.Stdout) != "disabled inactive\n" {
		t.Errorf("unit-state.sh: %q %v", res.Stdout, err)
	}
	if _, err := run(t, h, "systemctl", "enable", "containerd"); err != nil {
		t.Fatal(err)
	}
	if res, _ := run(t, h, scripts.UnitState.Args("containerd")...); string(res.Stdout) != "enabled inactive\n" {
		t.Errorf("after enable: %q", res.Stdout)
	}
	// The same body under another name is not the script.
	if _, err := run(t, h, "sh", "-c", scripts.UnitState.Body, "other.sh", "containerd"); err == nil || !strings.Contains(err.Error(), "no response scripted") {
		t.Errorf("a body under another name: %v", err)
	}
	if _, err := run(t, h, "reboot"); err == nil || !strings.Contains(err.Error(), "no response scripted for reboot") {
		t.Errorf("unknown command: %v", err)
	}

	h.FailAt("systemctl restart")
	h.FailAt("apt.sh '' update").Exit(75, "apt lock held by unattended-upgr (pid 812)")
	h.FailAt("swap-off.sh").Lose()
	_, err := run(t, h, "systemctl", "restart", "containerd")
	var ce *ssh.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 || ce.Stderr != "injected failure" || ce.Command != "systemctl restart containerd" {
		t.Errorf("injected failure: %v", err)
	}
	if _, err := run(t, h, "systemctl", "restart", "containerd"); err != nil {
		t.Errorf("the failure fired twice: %v", err)
	}
	if _, err := run(t, h, scripts.Apt.Args("", "install", "x")...); err != nil {
		t.Errorf("a step's leading words are whole words: %v", err)
	}
	if _, err := run(t, h, scripts.Apt.Args("", "update")...); !errors.As(err, &ce) || ce.ExitCode != 75 {
		t.Errorf("apt update: %v", err)
	}
	var lost *ssh.ConnectionLostError
	if _, err := run(t, h, scripts.SwapOff.Args()...); !errors.As(err, &lost) || !h.State().Swap {
		t.Errorf("lost connection: %v, %+v", err, h.State())
	}
	want := []string{"unit-state.sh containerd", "systemctl enable containerd", "unit-state.sh containerd", "other.sh containerd"}
	if got := h.Commands(0); strings.Join(got[:3], "\n") != strings.Join(want[:3], "\n") || !strings.HasPrefix(got[3], "sh -c ") {
		t.Errorf("commands: %q", got)
	}
}

// TestKubeadmLifecycle: init makes a control plane that answers, reset takes kubeadm's state away
// and leaves what reset-host.sh then lists, which it removes.
func TestKubeadmLifecycle(t *testing.T) {
	c := simhost.NewCluster()
	cp := c.Add("cp1", "10.0.0.11", true)
	w := c.Add("w1", "10.0.0.21", false)
	for _, h := range []*simhost.Host{cp, w} {
		for _, b := range []string{"kubeadm", "kubelet"} {
			if _, err := run(t, h, install.DownloadBinary("http://m/release/v1.36.5/bin/linux/amd64/"+b, install.Checksum{Digest: strings.Repeat("0", 64)}, "/usr/bin/"+b, "")...); err != nil {
				t.Fatal(err)
			}
		}
		h.SetFile("/etc/kubernetes/installer/kubeadm.yaml", []byte("kind: InitConfiguration\n"), 0o600, "root:root")
	}
	if _, err := run(t, w, "kubeadm", "join", "--config", "/etc/kubernetes/installer/kubeadm.yaml"); err == nil {
		t.Error("joined a cluster that does not exist")
	}
	cp.SetFile("/etc/kubernetes/pki/ca.crt", []byte("CA"), 0o644, "root:root")
	if _, err := run(t, cp, "kubeadm", "init", "--config", "/etc/kubernetes/installer/kubeadm.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, w, "kubeadm", "join", "--config", "/etc/kubernetes/installer/kubeadm.yaml"); err != nil {
		t.Fatal(err)
	}
	if ca, _ := w.File("/etc/kubernetes/pki/ca.crt"); string(ca.Content) != "CA" || !w.State().Node || w.State().KubeletRunning != "v1.36.5" {
		t.Errorf("w1 after join: CA %q, %+v", ca.Content, w.State())
	}
	if cp.State().ControlPlane != "v1.36.5" || len(c.EtcdMembers()) != 1 {
		t.Errorf("cp1: %+v, etcd %v", cp.State(), c.EtcdMembers())
	}
	if _, err := run(t, cp, "kubeadm", "reset", "-f"); err != nil {
		t.Fatal(err)
	}
	if cp.State().Node || len(c.EtcdMembers()) != 0 || len(cp.Files("/etc/kubernetes/pki/")) != 0 {
		t.Errorf("after kubeadm reset: %+v, etcd %v, pki %v", cp.State(), c.EtcdMembers(), cp.Files("/etc/kubernetes/pki/"))
	}
	// kubeadm reset stopped the kubelet; the directories, the CNI's links and firewall stay.
	if left := strings.Join(cp.Leftovers(), "\n"); !strings.Contains(left, "path /etc/kubernetes\n") || !strings.Contains(left, "link cni0") ||
		!strings.Contains(left, "chain iptables-nft nat KUBE-SERVICES") || strings.Contains(left, "unit kubelet") {
		t.Errorf("left after kubeadm reset:\n%s", left)
	}
	if _, err := run(t, cp, scripts.ResetHost.Args("remove", "10.244.0.0/16")...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, cp, scripts.ResetFirewall.Args("remove")...); err != nil {
		t.Fatal(err)
	}
	if left := cp.Leftovers(); len(left) != 0 {
		t.Errorf("left after the reset scripts: %q", left)
	}
}
