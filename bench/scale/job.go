package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
)

// job is one host count's work, shared by the orchestrator and its child clients (as job.json).
type job struct {
	Dir         string              `json:"dir"`
	Spec        string              `json:"spec"` // the cluster spec the installer engine runs on
	Hosts       []*benchHost        `json:"hosts"`
	KeyFile     string              `json:"keyFile"`
	KnownHosts  string              `json:"knownHosts"`
	Concurrency int                 `json:"concurrency"`
	Files       []benchFile         `json:"files"` // the same relative paths on every host
	Sources     string              `json:"sources"`
	Expected    map[string][]string `json:"expected"` // host -> SHA-256 of each of Files, in order
}

// benchFile is one node file, relative to a host's root.
type benchFile struct {
	Rel  string      `json:"rel"`
	Mode fs.FileMode `json:"mode"`
}

// commandLine is the one command a host runs when a file changed (every client runs the same).
func commandLine(root string) []string {
	return []string{"touch", filepath.Join(root, "applied")}
}

// benchSpec is a cluster of n hosts (the first a control plane) installed from a binary mirror
// with registry mirrors: the node files of a real air-gapped install.
func benchSpec(hosts []*benchHost, keyFile, knownHosts string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: installer.dev/v1alpha1
kind: Cluster
metadata: {name: bench}
spec:
  ssh: {user: root, port: %d, keyFile: %s, knownHostsFile: %s}
  install:
    source: binary
    binaryMirror: http://192.0.2.1/kubernetes
    artifactMirror: http://192.0.2.1/github
  images:
    mirrors:
      registry.k8s.io: [{url: "http://192.0.2.1:5000"}]
      docker.io: [{url: "http://192.0.2.1:5000"}]
  hosts:
`, hosts[0].Port, keyFile, knownHosts)
	for i, h := range hosts {
		role := "worker"
		if i == 0 {
			role = "control-plane"
		}
		fmt.Fprintf(&b, "    - {name: %s, address: %s, role: %s}\n", h.Name, h.Address, role)
	}
	return b.String()
}

// loadSpec reads, defaults and validates a spec as the installer does.
func loadSpec(path string) (*v1alpha1.Cluster, error) {
	c, err := v1alpha1.LoadFile(path)
	if err != nil {
		return nil, err
	}
	c.Default()
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", path, errs.ToAggregate())
	}
	return c, nil
}

// renderFiles renders a host's node files as the installer does and moves them under its root.
func renderFiles(c *v1alpha1.Cluster, in manifests.Inputs, h v1alpha1.Host, f facts.Host, root string) ([]manifests.File, error) {
	files, err := manifests.RenderHostFiles(manifests.HostInput{Spec: &c.Spec, Host: h, Facts: f, Inputs: in})
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", h.Name, err)
	}
	all := files.All()
	for i := range all {
		all[i].Path = filepath.Join(root, all[i].Path)
	}
	manifests.SortFiles(all)
	return all, nil
}

func inputs(ctx context.Context, c *v1alpha1.Cluster) (manifests.Inputs, error) {
	return manifests.LoadInputs(ctx, &c.Spec, manifests.LoadOptions{VRRPPassword: "bench-vrrp", HashKey: []byte("bench")})
}

// prepareJob writes the spec and renders every host's files into dir/sources/<host>/ (Ansible
// copies them from there; the floor reads them), from the facts this machine gives, which are
// every host's.
func prepareJob(ctx context.Context, dir string, hosts []*benchHost, fl *fleet, concurrency int) (*job, error) {
	j := &job{Dir: dir, Hosts: hosts, KeyFile: fl.keyFile, KnownHosts: fl.knownHosts, Concurrency: concurrency,
		Sources: filepath.Join(dir, "sources"), Expected: map[string][]string{}}
	j.Spec = filepath.Join(dir, fmt.Sprintf("cluster-%d.yaml", len(hosts)))
	if err := os.WriteFile(j.Spec, []byte(benchSpec(hosts, fl.keyFile, fl.knownHosts)), 0o644); err != nil {
		return nil, err
	}
	c, err := loadSpec(j.Spec)
	if err != nil {
		return nil, err
	}
	in, err := inputs(ctx, c)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "sh", "-c", scripts.Facts.Body, scripts.Facts.Name).Output()
	if err != nil {
		return nil, fmt.Errorf("facts of this machine: %w", err)
	}
	local, err := facts.Parse(string(out))
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(j.Sources); err != nil {
		return nil, err
	}
	for i, h := range hosts {
		files, err := renderFiles(c, in, c.Spec.Hosts[i], local, h.Root)
		if err != nil {
			return nil, err
		}
		var rels []benchFile
		for _, f := range files {
			rel, _ := filepath.Rel(h.Root, f.Path)
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			rels = append(rels, benchFile{Rel: rel, Mode: mode})
			src := filepath.Join(j.Sources, h.Name, rel)
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(src, f.Content, 0o600); err != nil {
				return nil, err
			}
			sum := sha256.Sum256(f.Content)
			j.Expected[h.Name] = append(j.Expected[h.Name], fmt.Sprintf("%x", sum))
		}
		if i == 0 {
			j.Files = rels
		} else if !sameFiles(j.Files, rels) {
			// The control plane (first host) renders the same node files as a worker here: no
			// load balancer is configured.
			return nil, fmt.Errorf("host %s renders other files than %s", h.Name, hosts[0].Name)
		}
	}
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, err
	}
	return j, os.WriteFile(filepath.Join(dir, "job.json"), data, 0o644)
}

func sameFiles(a, b []benchFile) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// clearRoots removes every host's files: the next run is cold.
func (j *job) clearRoots() error {
	for _, h := range j.Hosts {
		if err := os.RemoveAll(h.Root); err != nil {
			return err
		}
		if err := os.MkdirAll(h.Root, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// fileIDs identifies every file on every host by inode and change time: a write that replaced or
// changed a file shows as a different id, whichever client made it.
func (j *job) fileIDs() map[string]string {
	ids := map[string]string{}
	for _, h := range j.Hosts {
		for _, f := range j.Files {
			p := filepath.Join(h.Root, f.Rel)
			if st, err := os.Stat(p); err == nil {
				s := st.Sys().(*syscall.Stat_t)
				ids[p] = fmt.Sprintf("%d/%d.%d", s.Ino, s.Ctim.Sec, s.Ctim.Nsec)
			}
		}
	}
	return ids
}

// verify checks that every host holds exactly the expected files, with their modes.
func (j *job) verify() error {
	for _, h := range j.Hosts {
		for i, f := range j.Files {
			p := filepath.Join(h.Root, f.Rel)
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if got := fmt.Sprintf("%x", sha256.Sum256(data)); got != j.Expected[h.Name][i] {
				return fmt.Errorf("%s: content differs from what the installer renders", p)
			}
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			if st.Mode().Perm() != f.Mode {
				return fmt.Errorf("%s: mode %04o, want %04o", p, st.Mode().Perm(), f.Mode)
			}
		}
	}
	return nil
}
