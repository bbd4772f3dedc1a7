// Package podman runs rootful podman with every piece of its state inside one lab directory and the
// flags this machine type needs (runc, cgroupfs, file events; see DESIGN.md §5). Nothing else in the
// lab calls the podman binary directly.
package podman

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Podman is podman bound to one state directory.
type Podman struct {
	Dir string // holds root/, runroot/, tmp/ and net/ (network configs)
}

// New returns podman bound to dir, creating the directories it needs.
func New(dir string) (*Podman, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("podman dir: %w", err)
	}
	for _, d := range []string{"root", "runroot", "tmp", "net"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("podman dir: %w", err)
		}
	}
	return &Podman{Dir: abs}, nil
}

// NetworkConfigDir is where network definitions (JSON) live.
func (p *Podman) NetworkConfigDir() string { return filepath.Join(p.Dir, "net") }

func (p *Podman) globalArgs() []string {
	return []string{
		"--root", filepath.Join(p.Dir, "root"),
		"--runroot", filepath.Join(p.Dir, "runroot"),
		"--tmpdir", filepath.Join(p.Dir, "tmp"),
		"--network-config-dir", p.NetworkConfigDir(),
		"--storage-driver", "overlay",
		// crun refuses this machine's hybrid cgroup layout, and there is no systemd on the host.
		"--runtime", "runc",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
}

// Command returns the exec.Cmd for a podman invocation (for callers that need stdin or streaming).
func (p *Podman) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "podman", append(p.globalArgs(), args...)...)
}

// Run runs podman and returns its trimmed stdout; a failure carries stderr.
func (p *Podman) Run(ctx context.Context, args ...string) (string, error) {
	cmd := p.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Exec runs argv inside a running container and returns its stdout.
func (p *Podman) Exec(ctx context.Context, container string, argv ...string) (string, error) {
	return p.Run(ctx, append([]string{"exec", container}, argv...)...)
}

// ImageExists tells whether the image is in the store.
func (p *Podman) ImageExists(ctx context.Context, ref string) bool {
	_, err := p.Run(ctx, "image", "exists", ref)
	return err == nil
}

// ContainerExists tells whether the container exists (in any state).
func (p *Podman) ContainerExists(ctx context.Context, name string) bool {
	_, err := p.Run(ctx, "container", "exists", name)
	return err == nil
}

// State returns a container's state (running, exited, created, …).
func (p *Podman) State(ctx context.Context, name string) (string, error) {
	return p.Run(ctx, "inspect", "--type", "container", "--format", "{{.State.Status}}", name)
}

// PID returns the host PID of a running container's init process.
func (p *Podman) PID(ctx context.Context, name string) (int, error) {
	out, err := p.Run(ctx, "inspect", "--type", "container", "--format", "{{.State.Pid}}", name)
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscan(out, &pid); err != nil || pid <= 0 {
		return 0, fmt.Errorf("container %s has no PID (%q)", name, out)
	}
	return pid, nil
}
