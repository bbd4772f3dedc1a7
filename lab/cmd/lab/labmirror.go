package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/internal/proc"
	"installer.dev/installer/lab/labspec"
	"installer.dev/installer/lab/mirror"
	"installer.dev/installer/pkg/versions"
)

// mirrorPort is where `lab up` serves the binary mirror and the registry on the bridge.
const mirrorPort = 5000

// processMirror runs `lab mirror serve` (this same binary) in the background for `lab up`: the CLI
// exits, the mirror keeps serving, and `lab down` stops it by the PID it recorded.
type processMirror struct{}

func (processMirror) Start(ctx context.Context, bindAddress, kubernetesVersion, dir string) (*labspec.Mirror, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	ready := filepath.Join(dir, "ready")
	_ = os.Remove(ready)
	_ = os.Remove(filepath.Join(dir, mirror.PinsName))
	logPath := filepath.Join(dir, "mirror.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	defer logf.Close()
	addr := fmt.Sprintf("%s:%d", bindAddress, mirrorPort)
	// The lab's version and every release it can be upgraded to: a lab at the default builds and
	// serves one Kubernetes set, an upgrade scenario the sets it goes through.
	var serve []string
	for _, r := range versions.From(kubernetesVersion) {
		serve = append(serve, r.Kubernetes)
	}
	if len(serve) == 0 {
		return nil, fmt.Errorf("mirror: Kubernetes %s is not supported (%s)", kubernetesVersion, versions.SupportedList())
	}
	cmd := exec.Command(self, "mirror", "serve", "--addr", addr, "--k8s", strings.Join(serve, ","),
		"--pid-file", filepath.Join(dir, "pid"), "--ready-file", ready, "--pins-file", filepath.Join(dir, mirror.PinsName))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives `lab up`, immune to its Ctrl-C
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(os.Stderr, "mirror: starting on %s (builds what is not cached yet; log %s)\n", addr, logPath)
	for {
		if data, err := os.ReadFile(ready); err == nil && strings.TrimSpace(string(data)) != "" {
			cache, err := build.DefaultCacheDir()
			if err != nil {
				return nil, err
			}
			return mirror.SpecMirror(strings.TrimSpace(string(data)), kubernetesVersion, cache, dir)
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("mirror exited before it was ready (%v); see %s", err, logPath)
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return nil, fmt.Errorf("mirror: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (processMirror) Stop(ctx context.Context, dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "pid"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mirror pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("mirror pid %q: %w", data, err)
	}
	return proc.Stop(ctx, pid, 10*time.Second, "mirror", "serve", "--pid-file", filepath.Join(dir, "pid"))
}
