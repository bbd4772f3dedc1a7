package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/pkg/state"
)

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs one command line in-process with a controlled environment. Any network dial fails the
// test: no command may connect before its spec and local inputs are valid, and none connects yet.
func runCLI(t *testing.T, env map[string]string, home string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := environment{
		Getenv: func(k string) string { return env[k] },
		Home:   home,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			t.Fatalf("command %v dialed %s %s", args, network, address)
			return nil, nil
		},
	}
	code := run(context.Background(), args, streams{In: strings.NewReader(""), Out: &out, Err: &errb}, e)
	return result{code, out.String(), errb.String()}
}

// validSpec writes a spec whose local inputs exist (a real key and known_hosts) and returns its path.
func validSpec(t *testing.T, dir string) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "id"), pem.EncodeToMemory(block), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o600))
	spec := `apiVersion: installer.dev/v1alpha1
kind: Cluster
metadata: {name: test}
spec:
  kubernetesVersion: v1.36.5
  ssh: {keyFile: id, knownHostsFile: known_hosts}
  hosts:
    - {name: cp1, address: 10.0.0.1, role: control-plane}
    - {name: w1, address: 10.0.0.2, role: worker}
`
	p := filepath.Join(dir, "cluster.yaml")
	must(t, os.WriteFile(p, []byte(spec), 0o644))
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	r := runCLI(t, nil, dir, "validate", "-f", spec)
	if r.code != 0 || r.stdout != "valid\n" || r.stderr != "" {
		t.Fatalf("valid spec: %+v", r)
	}

	bad := filepath.Join(dir, "bad.yaml")
	must(t, os.WriteFile(bad, []byte(`apiVersion: installer.dev/v1alpha1
kind: Cluster
metadata: {name: test}
spec:
  kubernetesVersion: v1.36.5
  ssh: {keyFile: id, knownHostsFile: known_hosts}
  hosts:
    - {name: cp1, address: 10.0.0.1, role: control-plane}
    - {name: cp2, address: 10.0.0.2, role: control-plane}
    - {name: w1, address: "bad address", role: worker}
`), 0o644))
	r = runCLI(t, nil, dir, "validate", "-f", bad)
	want := "warning: spec.hosts: 2 control planes: stacked etcd with an even member count tolerates no more failures than one fewer; use 1 or 3\n" +
		`spec.hosts[2].address: Invalid value: "bad address": must be an IP address or a DNS name` + "\n" +
		bad + ": 1 problem; nothing was changed\n"
	if r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Fatalf("invalid spec: code %d\nstderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}

	// An image override written for another release's tag matches nothing: said, not an error.
	stale := filepath.Join(dir, "stale.yaml")
	raw, err := os.ReadFile(spec)
	must(t, err)
	must(t, os.WriteFile(stale, append(raw, []byte(`  images:
    overrides:
      registry.k8s.io/etcd:3.5.0-0: mirror.example/etcd:3.5.0-0
      registry.k8s.io/pause:3.10.2: mirror.example/pause:3.10.2
`)...), 0o644))
	r = runCLI(t, nil, dir, "validate", "-f", stale)
	want = `warning: spec.images.overrides["registry.k8s.io/etcd:3.5.0-0"]: names no image of Kubernetes v1.36.5, so it changes nothing (docs/versions.md lists each release's images)` + "\n"
	if r.code != 0 || r.stdout != "valid\n" || r.stderr != want {
		t.Fatalf("stale override: code %d\nstderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}

	r = runCLI(t, nil, dir, "validate", "-f", filepath.Join(dir, "missing.yaml"))
	if r.code != 2 || !strings.Contains(r.stderr, "missing.yaml: no such file or directory") {
		t.Fatalf("missing spec: %+v", r)
	}
}

// TestNoConnectionBeforeValidInput runs every command against an invalid spec and against a spec
// whose local inputs are missing: each exits 2 and never dials.
func TestNoConnectionBeforeValidInput(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "invalid.yaml")
	must(t, os.WriteFile(invalid, []byte("apiVersion: installer.dev/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec: {hosts: [{name: cp1, address: 10.0.0.1, role: nope}]}\n"), 0o644))
	noKey := filepath.Join(dir, "nokey.yaml")
	must(t, os.WriteFile(noKey, []byte("apiVersion: installer.dev/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec: {ssh: {keyFile: /nonexistent/key}, hosts: [{name: cp1, address: 10.0.0.1, role: control-plane}]}\n"), 0o644))
	commands := [][]string{
		{"create", "cluster"}, {"create", "cluster", "--dry-run"}, {"join", "node", "--host", "cp1"},
		{"upgrade"}, {"reset", "--yes"}, {"validate"}, {"render", "-o", dir}, {"plan"}, {"kubeconfig"},
		{"certs", "check"},
	}
	for _, spec := range []string{invalid, noKey} {
		for _, c := range commands {
			if spec == noKey && c[0] == "render" {
				continue // render touches no host: it needs no SSH key (checked below)
			}
			r := runCLI(t, nil, dir, append(c, "-f", spec)...)
			if r.code != 2 {
				t.Errorf("%v on %s: exit %d, want 2\n%s", c, filepath.Base(spec), r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "nothing was changed") {
				t.Errorf("%v: stderr lacks the summary:\n%s", c, r.stderr)
			}
		}
	}
}

// TestConnectsOnlyAfterValidation: with a valid spec, create cluster and plan dial every host (after
// the offline checks) and a refused connection is exit code 4 with the host named.
func TestConnectsOnlyAfterValidation(t *testing.T) {
	for _, c := range [][]string{{"create", "cluster"}, {"plan"}, {"upgrade"}, {"certs", "check"}} {
		dir := t.TempDir()
		spec := validSpec(t, dir)
		var dialed []string
		var mu sync.Mutex
		var out, errb bytes.Buffer
		e := environment{Getenv: func(k string) string {
			if k == "INSTALLER_STATE_DIR" {
				return filepath.Join(dir, "state")
			}
			return ""
		}, Home: dir, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, address)
			mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}}
		code := run(context.Background(), append(c, "-f", spec), streams{In: strings.NewReader(""), Out: &out, Err: &errb}, e)
		sort.Strings(dialed)
		if code != 4 || strings.Join(dialed, ",") != "10.0.0.1:22,10.0.0.2:22" {
			t.Fatalf("%v: exit %d, dialed %v\n%s", c, code, dialed, errb.String())
		}
		if !strings.Contains(errb.String(), "host cp1: cannot reach 10.0.0.1:22") || !strings.Contains(errb.String(), "phase connect") {
			t.Errorf("%v: error output:\n%s", c, errb.String())
		}
		// Nothing is generated into the state directory before the hosts have been read: a PKI
		// saved now could later meet a running cluster.
		for _, f := range []string{"pki", "secrets"} {
			if _, err := os.Stat(filepath.Join(dir, "state", f)); !os.IsNotExist(err) {
				t.Errorf("%v: state/%s exists after a run that reached no host (%v)", c, f, err)
			}
		}
	}
}

// TestCertsCheckFlags: a bad --output or --warn-days is invalid input, found before any host.
func TestCertsCheckFlags(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	for args, want := range map[string]string{"-o yaml": `--output "yaml": want table or json`, "--warn-days -1": "--warn-days -1: must not be negative"} {
		r := runCLI(t, nil, dir, append([]string{"certs", "check", "-f", spec}, strings.Fields(args)...)...)
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("certs check %s: exit %d\n%s", args, r.code, r.stderr)
		}
	}
}

func TestHostFlagChecked(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	r := runCLI(t, nil, dir, "join", "node", "-f", spec, "--host", "w9")
	if r.code != 2 || r.stderr != "error: --host w9: not in the spec (hosts: cp1, w1)\n" {
		t.Fatalf("%+v", r)
	}
	r = runCLI(t, nil, dir, "join", "node", "-f", spec)
	if r.code != 2 || !strings.Contains(r.stderr, `required flag(s) "host" not set`) {
		t.Fatalf("missing --host: %+v", r)
	}
}

func TestUsageErrorsAreInvalidInput(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"}, {"crete", "cluster"}, {"validate", "--no-such-flag"}, {"-Z", "version"}, {"validate", "-f"},
		{"--concurrency", "abc", "version"}, {"version", "extra"}, {"create", "cluster", "extra"}, {"completion", "bash", "extra"},
		{"join", "node"}, {"--log-format", "xml", "version"}, {"--concurrency", "0", "version"}, {"upgrade", "--to", "v1.99.0"},
	} {
		r := runCLI(t, nil, t.TempDir(), args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
	r := runCLI(t, nil, t.TempDir(), "crete")
	if want := "error: unknown command \"crete\" for \"installer\"; did you mean create?\n"; r.stderr != want {
		t.Errorf("unknown command: stderr %q, want %q", r.stderr, want)
	}
	for _, args := range [][]string{nil, {"--help"}, {"create"}} {
		if r := runCLI(t, nil, t.TempDir(), args...); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: exit %d, stdout %q; want the help, exit 0", args, r.code, r.stdout)
		}
	}
}

// TestWorkErrorsKeepTheirCode: an error of the work itself is exit 1 even when its text reads like
// cobra's (a runtime EINVAL says "invalid argument"; it was once taken for a usage error, exit 2).
func TestWorkErrorsKeepTheirCode(t *testing.T) {
	for _, err := range []error{
		&os.PathError{Op: "open", Path: "/dev/tty0", Err: syscall.EINVAL},
		errors.New("host cp1: kubeadm: unknown flag: --foo"),
		errors.New("etcdctl: accepts 1 arg(s), received 2"),
	} {
		var out, errb bytes.Buffer
		a := &app{streams: streams{In: strings.NewReader(""), Out: &out, Err: &errb},
			env: environment{Getenv: func(string) string { return "" }, Home: t.TempDir()}, log: slog.New(slog.DiscardHandler)}
		root := a.newRootCommand()
		root.AddCommand(&cobra.Command{Use: "work", RunE: func(*cobra.Command, []string) error { return err }})
		code := runRoot(context.Background(), root, []string{"work"}, &errb)
		if code != 1 || errb.String() != "error: "+err.Error()+"\n" {
			t.Errorf("%v: exit %d, stderr %q; want 1", err, code, errb.String())
		}
	}
}

// TestDefaultsPrecedence: flags win over INSTALLER_* variables, which win over the config file.
func TestDefaultsPrecedence(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	cfgDir := filepath.Join(dir, "cfg", "installer")
	must(t, os.MkdirAll(cfgDir, 0o700))
	must(t, os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte("log-format: json\nfile: "+spec+"\n"), 0o600))
	env := map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "cfg")}

	// The config file supplies --file: validate finds the spec without -f.
	r := runCLI(t, env, dir, "validate")
	if r.code != 0 {
		t.Fatalf("config file default for --file not used: %+v", r)
	}
	// INSTALLER_LOG_FORMAT beats the config file; an invalid value proves it was read.
	env["INSTALLER_LOG_FORMAT"] = "yaml"
	r = runCLI(t, env, dir, "validate")
	if r.code != 2 || !strings.Contains(r.stderr, `--log-format: "yaml" is not text or json`) {
		t.Fatalf("env var not applied: %+v", r)
	}
	// The flag beats both.
	r = runCLI(t, env, dir, "validate", "--log-format", "text")
	if r.code != 0 {
		t.Fatalf("flag did not win: %+v", r)
	}
	// Unknown keys in the config file are errors, not silently ignored.
	must(t, os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte("state_dir: /x\n"), 0o600))
	r = runCLI(t, map[string]string{"XDG_CONFIG_HOME": filepath.Join(dir, "cfg")}, dir, "version")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown key "state_dir"`) {
		t.Fatalf("unknown config key: %+v", r)
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, nil, t.TempDir(), "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "installer dev\n") || !strings.Contains(r.stdout, "kubernetes: v1.35.8, v1.36.5, v1.37.2") {
		t.Fatalf("%+v", r)
	}
	r = runCLI(t, nil, t.TempDir(), "version", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"kubernetes": [`) || !strings.Contains(r.stdout, `"version": "dev"`) {
		t.Fatalf("%+v", r)
	}
}

func TestCompletion(t *testing.T) {
	r := runCLI(t, nil, t.TempDir(), "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "__start_installer") {
		t.Fatalf("bash completion: code %d, %d bytes", r.code, len(r.stdout))
	}
}

func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	stateDir := filepath.Join(dir, "state")
	must(t, os.MkdirAll(stateDir, 0o700))
	admin := `apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: Y2E=, server: "https://10.0.0.1:6443"}
  name: kubernetes
users:
- name: kubernetes-admin
  user: {client-certificate-data: Y2VydA==, client-key-data: a2V5}
contexts:
- context: {cluster: kubernetes, user: kubernetes-admin}
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
`
	must(t, os.WriteFile(filepath.Join(stateDir, "admin.conf"), []byte(admin), 0o600))
	env := map[string]string{"INSTALLER_STATE_DIR": stateDir}
	r := runCLI(t, env, dir, "kubeconfig", "-f", spec)
	if r.code != 0 || r.stdout != admin {
		t.Fatalf("print: %+v", r)
	}
	existing := "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: \"https://other:6443\"}\n  name: other\ncontexts:\n- context: {cluster: other, user: \"\"}\n  name: other\ncurrent-context: other\nusers: []\n"
	must(t, os.MkdirAll(filepath.Join(dir, ".kube"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, ".kube", "config"), []byte(existing), 0o600))
	r = runCLI(t, env, dir, "kubeconfig", "-f", spec, "--merge")
	if r.code != 0 || !strings.Contains(r.stderr, `added context "test"`) {
		t.Fatalf("merge: %+v", r)
	}
	merged, err := clientcmd.LoadFromFile(filepath.Join(dir, ".kube", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if merged.CurrentContext != "other" || merged.Clusters["other"] == nil || merged.Clusters["test"].Server != "https://10.0.0.1:6443" || merged.Contexts["test"].AuthInfo != "test-admin" {
		t.Errorf("merged config = %+v", merged)
	}
	st, _ := os.Stat(filepath.Join(dir, ".kube", "config"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v", st.Mode())
	}
}

// TestInterruptExits130AndReleasesLock: Ctrl-C (the context cancelled) while the run connects stops
// it with exit code 130, and the state directory's lock is free again.
func TestInterruptExits130AndReleasesLock(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	stateDir := filepath.Join(dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	e := environment{Getenv: func(k string) string {
		if k == "INSTALLER_STATE_DIR" {
			return stateDir
		}
		return ""
	}, Home: dir, Dial: func(dctx context.Context, network, address string) (net.Conn, error) {
		cancel() // the operator presses Ctrl-C while hosts are being dialled
		<-dctx.Done()
		return nil, dctx.Err()
	}}
	code := run(ctx, []string{"create", "cluster", "-f", spec}, streams{In: strings.NewReader(""), Out: &out, Err: &errb}, e)
	if code != 130 {
		t.Fatalf("exit %d, want 130\n%s", code, errb.String())
	}
	lock, err := state.Acquire(state.Dir(stateDir))
	if err != nil {
		t.Fatalf("the lock is still held after the interrupted run: %v", err)
	}
	_ = lock.Release()
}

// TestRemoveOnlyForApply: a host marked remove is apply's alone; every other command that connects
// refuses the spec with the field and exit 2 before dialing anything (runCLI fails on any dial),
// and render leaves the host out.
func TestRemoveOnlyForApply(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	data, err := os.ReadFile(spec)
	must(t, err)
	must(t, os.WriteFile(spec, []byte(strings.Replace(string(data), "role: worker}", "role: worker, remove: true}", 1)), 0o644))
	if r := runCLI(t, nil, dir, "validate", "-f", spec); r.code != 0 {
		t.Fatalf("validate: a host marked remove is valid: %+v", r)
	}
	for _, args := range [][]string{{"create", "cluster"}, {"join", "node", "--host", "w1"}, {"upgrade", "--to", "v1.37.2"}, {"reset", "--yes"}, {"certs", "check"}, {"etcd", "snapshot"}} {
		r := runCLI(t, nil, dir, append(args, "-f", spec, "--state-dir", filepath.Join(dir, "state"))...)
		want := "spec.hosts[1].remove: Invalid value: true: host w1 is to be removed: `installer apply` removes it; then delete its entry"
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("%v with a host marked remove: exit %d\n%s\nwant exit 2 and %q", args, r.code, r.stderr, want)
		}
	}
	out := filepath.Join(dir, "out")
	if r := runCLI(t, nil, dir, "render", "-f", spec, "-o", out); r.code != 0 {
		t.Fatalf("render: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(out, "hosts", "w1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("render wrote files for w1, which is marked remove (stat: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(out, "hosts", "cp1")); err != nil {
		t.Errorf("render wrote no files for cp1: %v", err)
	}
}
