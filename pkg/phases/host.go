package phases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// Connector opens the connection to one host of the spec.
type Connector func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error)

// Host is a phase's handle on one host: its spec, its facts and its one connection. Every remote
// action goes through Query (reads, run in dry runs too), Exec and Upload (changes, only recorded in
// dry runs), always as root.
type Host struct {
	Spec v1alpha1.Host
	// Facts are what was observed on the host (GatherFacts; the upgrade reads them again before each
	// node). Phases never write them: what the run changed since is in did, and now() is both.
	Facts facts.Host
	did   hostChanges
	conn  ssh.Runner
	// fx makes (or records) the host's changes; progress hears ForEachHost's per-host events.
	fx       Effects
	progress Progress

	mu  sync.Mutex
	log io.Writer // the host's log file for this run; nil: none
}

// hostChanges is what this run changed on a host that its later steps must take into account. A
// dry run records them too: its later steps plan as if the earlier ones had run.
type hostChanges struct {
	mu sync.Mutex
	// packages installed (name -> version) and held by the run.
	packages map[string]string
	held     []string
	// kubeadm is the kubeadm version the run installed; containerd the version read back after the
	// run installed it.
	kubeadm, containerd string
}

// now is the host as the run knows it: the observed facts with the run's own changes on top.
func (h *Host) now() facts.Host {
	h.did.mu.Lock()
	defer h.did.mu.Unlock()
	f := h.Facts
	if len(h.did.packages) > 0 {
		f.Packages = maps.Clone(f.Packages)
		if f.Packages == nil {
			f.Packages = map[string]string{}
		}
		maps.Copy(f.Packages, h.did.packages)
	}
	for _, n := range h.did.held {
		if !slices.Contains(f.HeldPackages, n) {
			f.HeldPackages = append(slices.Clip(f.HeldPackages), n)
		}
	}
	if h.did.kubeadm != "" {
		f.KubeadmVersion = h.did.kubeadm
	}
	if h.did.containerd != "" {
		f.ContainerdVersion = h.did.containerd
	}
	return f
}

// record notes a change of the run's for its later steps.
func (h *Host) record(change func(*hostChanges)) {
	h.did.mu.Lock()
	defer h.did.mu.Unlock()
	change(&h.did)
}

// observed replaces the facts with a new observation, which includes the run's changes so far.
func (h *Host) observed(f facts.Host) {
	h.record(func(c *hostChanges) { c.packages, c.held, c.kubeadm, c.containerd = nil, nil, "", "" })
	h.Facts = f
}

// Name is the host's name in the spec.
func (h *Host) Name() string { return h.Spec.Name }

// Connected reports whether the connect phase opened this host's connection.
func (h *Host) Connected() bool { return h.conn != nil }

// Runner is the host's connection, for tunnels (DialContext) to its local ports.
func (h *Host) Runner() ssh.Runner { return h.conn }

// SetConnection installs the host's connection (the connect phase, and tests).
func (h *Host) SetConnection(r ssh.Runner) { h.conn = r }

// SetLog directs the host's command log (one file per host per run).
func (h *Host) SetLog(w io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = w
}

var errNotConnected = errors.New("not connected")

// Query runs a command that changes nothing (it runs in dry runs too).
func (h *Host) Query(ctx context.Context, cmd ssh.Cmd) (ssh.Result, error) {
	if h.conn == nil {
		return ssh.Result{}, errNotConnected
	}
	cmd.Sudo = true
	res, err := h.conn.Run(ctx, cmd)
	h.logCommand("query", cmd, res, err)
	return res, err
}

// Exec runs a command that changes the host, through the run's effects (a dry run records it and
// reports success with empty output).
func (h *Host) Exec(ctx context.Context, cmd ssh.Cmd) (ssh.Result, error) {
	return h.fx.Exec(ctx, h, cmd)
}

// ExecDescribed is Exec for a command whose plan reads better as what it does, one line each.
func (h *Host) ExecDescribed(ctx context.Context, cmd ssh.Cmd, describe []string) (ssh.Result, error) {
	return h.fx.Exec(ctx, h, cmd, describe...)
}

// Upload writes a rendered file atomically when its content, mode or owner differ, and reports
// whether it changed (a dry run compares checksums and records the upload).
func (h *Host) Upload(ctx context.Context, f manifests.File) (bool, error) {
	if h.conn == nil {
		return false, errNotConnected
	}
	return h.fx.Upload(ctx, h, f, uploadMode(f), nil)
}

// uploadMode is the mode a rendered file is written with.
func uploadMode(f manifests.File) fs.FileMode {
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	if f.Sensitive {
		mode &= 0o600 // secrets are never readable by group or others
	}
	return mode
}

// UploadAll uploads files in path order and returns how many changed. It reads every file's state
// in one round trip first: a converged host costs that one, not one per file, and each file that
// differs is written without being read again.
func (h *Host) UploadAll(ctx context.Context, files []manifests.File) (int, error) {
	if h.conn == nil {
		return 0, errNotConnected
	}
	sorted := append([]manifests.File(nil), files...)
	manifests.SortFiles(sorted)
	paths := make([]string, len(sorted))
	for i, f := range sorted {
		paths[i] = f.Path
	}
	states, err := h.fileStates(ctx, paths)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, f := range sorted {
		mode, st := uploadMode(f), states[i]
		// What the upload keeps as it is: uploads write root:root (effects_apply.go).
		if st.Exists && st.SHA256 == f.SHA256() && st.Mode == mode && st.Owner == "root" && st.Group == "root" {
			continue
		}
		changed, err := h.fx.Upload(ctx, h, f, mode, &st)
		if err != nil {
			return n, err
		}
		if changed {
			n++
		}
	}
	return n, nil
}

// ReadFile reads a file as root; errors.Is(err, fs.ErrNotExist) when it is absent.
func (h *Host) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if h.conn == nil {
		return nil, errNotConnected
	}
	return h.conn.ReadFile(ctx, path, ssh.ReadOptions{Sudo: true})
}

// CopyFile streams a file, read as root, into w without holding it in memory.
func (h *Host) CopyFile(ctx context.Context, path string, w io.Writer) error {
	if h.conn == nil {
		return errNotConnected
	}
	_, err := h.conn.ReadFile(ctx, path, ssh.ReadOptions{Sudo: true, To: w})
	return err
}

// fileState reads a file's checksum, mode and owner in one round trip (file-state.sh, the script
// pkg/ssh's WriteFile compares with).
func (h *Host) fileState(ctx context.Context, path string) (ssh.FileState, error) {
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.FileState.Args(path)})
	if err != nil {
		return ssh.FileState{}, fmt.Errorf("compare %s: %w", path, err)
	}
	st, err := ssh.ParseFileState(string(res.Stdout))
	if err != nil {
		return ssh.FileState{}, fmt.Errorf("compare %s: %w", path, err)
	}
	return st, nil
}

// fileStates reads many files' states in one round trip (file-states.sh).
func (h *Host) fileStates(ctx context.Context, paths []string) ([]ssh.FileState, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.FileStates.Args(paths...), Idempotent: true})
	if err != nil {
		return nil, fmt.Errorf("compare %d files: %w", len(paths), err)
	}
	states, err := ssh.ParseFileStates(string(res.Stdout), len(paths))
	if err != nil {
		return nil, fmt.Errorf("compare %d files: %w", len(paths), err)
	}
	return states, nil
}

// fileDiffers reports whether f on h is missing or has other content or mode than f.
func (h *Host) fileDiffers(ctx context.Context, f manifests.File) (bool, error) {
	st, err := h.fileState(ctx, f.Path)
	if err != nil {
		return false, err
	}
	mode := f.Mode
	if mode == 0 {
		mode = 0o644
	}
	return !st.Exists || st.SHA256 != f.SHA256() || st.Mode != mode, nil
}

func (h *Host) logCommand(kind string, cmd ssh.Cmd, res ssh.Result, err error) {
	if h.log == nil {
		return
	}
	if cmd.Sensitive {
		h.logf("%s <sensitive command>: err=%v", kind, err != nil)
		return
	}
	// The same redaction as the terminal's: tokens, private keys and the command's secrets.
	h.logf("%s %s\n%s%s-> exit %d err=%v", kind, ssh.ShowCommand(cmd), indent([]byte(ssh.Redact(string(res.Stdout), cmd.Secrets))),
		indent([]byte(ssh.Redact(string(res.Stderr), cmd.Secrets))), res.ExitCode, err)
}

func (h *Host) logf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.log != nil {
		fmt.Fprintf(h.log, format+"\n", args...)
	}
}

func indent(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return "  | " + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n  | ") + "\n"
}

// PlannedAction is one change a dry run would make: a command or an upload.
type PlannedAction struct {
	Phase   string
	Host    string
	Command string
	File    *PlannedFile
}

// PlannedFile is an upload a dry run would make; Display is masked for sensitive files.
type PlannedFile struct {
	Path      string
	Mode      fs.FileMode
	SHA256    string
	Display   []byte
	Sensitive bool
}

// Planned returns what a dry run recorded, in the order it happened.
func (r *Run) Planned() []PlannedAction {
	r.j.mu.Lock()
	defer r.j.mu.Unlock()
	return append([]PlannedAction(nil), r.j.planned...)
}

// Performed returns the cluster-API and state-directory changes a real run made, in order,
// described as a dry run plans them.
func (r *Run) Performed() []PlannedAction {
	r.j.mu.Lock()
	defer r.j.mu.Unlock()
	return append([]PlannedAction(nil), r.j.performed...)
}
