package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// runFloor does the same remote steps with nothing but x/crypto/ssh, as few sessions as they
// allow: one connection per host; the facts script; one sha256sum of every file; one session per
// file that differs (mkdir, cat from stdin to a temporary file, chmod, rename); the command when
// one changed. It checks content only (not mode or owner) and renders nothing: it reads the files
// the orchestrator rendered. That is the floor the installer is measured against.
func runFloor(ctx context.Context, j *job) (childResult, error) {
	hostKeys, err := knownhosts.New(j.KnownHosts)
	if err != nil {
		return childResult{}, err
	}
	keyData, err := os.ReadFile(j.KeyFile)
	if err != nil {
		return childResult{}, err
	}
	signer, err := gossh.ParsePrivateKey(keyData)
	if err != nil {
		return childResult{}, err
	}
	cfg := &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: hostKeys}
	var (
		mu      sync.Mutex
		changed int
		errs    []error
		wg      sync.WaitGroup
		slots   = make(chan struct{}, j.Concurrency)
	)
	for _, h := range j.Hosts {
		wg.Add(1)
		slots <- struct{}{}
		go func(h *benchHost) {
			defer wg.Done()
			defer func() { <-slots }()
			n, err := floorHost(ctx, j, h, cfg)
			mu.Lock()
			defer mu.Unlock()
			changed += n
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
			}
		}(h)
	}
	wg.Wait()
	if len(errs) > 0 {
		return childResult{}, fmt.Errorf("%d hosts failed, first: %w", len(errs), errs[0])
	}
	return childResult{Changed: changed}, nil
}

func floorHost(ctx context.Context, j *job, h *benchHost, cfg *gossh.ClientConfig) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.addr())
	if err != nil {
		return 0, err
	}
	c, chans, reqs, err := gossh.NewClientConn(conn, h.addr(), cfg)
	if err != nil {
		_ = conn.Close()
		return 0, err
	}
	client := gossh.NewClient(c, chans, reqs)
	defer func() { _ = client.Close() }()

	if _, err := floorRun(client, ssh.Quote(scripts.Facts.Args()), nil); err != nil {
		return 0, fmt.Errorf("facts: %w", err)
	}
	paths := make([]string, len(j.Files))
	for i, f := range j.Files {
		paths[i] = filepath.Join(h.Root, f.Rel)
	}
	// sha256sum exits 1 when a file is missing: its output still lists the others.
	out, _ := floorRun(client, ssh.Quote(append([]string{"sha256sum", "--"}, paths...))+" 2>/dev/null || true", nil)
	have := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if sum, p, ok := strings.Cut(line, "  "); ok {
			have[p] = sum
		}
	}
	changed := 0
	for i, f := range j.Files {
		if have[paths[i]] == j.Expected[h.Name][i] {
			continue
		}
		content, err := os.ReadFile(filepath.Join(j.Sources, h.Name, f.Rel))
		if err != nil {
			return changed, err
		}
		tmp := paths[i] + ".floor-tmp"
		line := fmt.Sprintf("mkdir -p %s && cat > %s && chmod %o %s && mv -f %s %s",
			ssh.Quote([]string{filepath.Dir(paths[i])}), ssh.Quote([]string{tmp}), f.Mode, ssh.Quote([]string{tmp}),
			ssh.Quote([]string{tmp}), ssh.Quote([]string{paths[i]}))
		if _, err := floorRun(client, line, content); err != nil {
			return changed, fmt.Errorf("write %s: %w", paths[i], err)
		}
		changed++
	}
	if changed > 0 {
		if _, err := floorRun(client, ssh.Quote(commandLine(h.Root)), nil); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// floorRun runs one command in one session and returns its stdout.
func floorRun(c *gossh.Client, line string, stdin []byte) ([]byte, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.Close() }()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &out, &errOut
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	if err := s.Run(line); err != nil {
		return out.Bytes(), fmt.Errorf("%v: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}
