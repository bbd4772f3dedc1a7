package ssh_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// BenchmarkRoundTrip compares one command on the reused connection with
// what a fresh `ssh` process per command costs (connect, key exchange,
// auth, command). Both log in as the same /bin/sh user.
func BenchmarkRoundTrip(b *testing.B) {
	srv, cfg := newServer(b, sshtest.ServerOptions{})
	var reused, fresh time.Duration
	b.Run("reused-connection", func(b *testing.B) {
		c, err := ssh.Dial(context.Background(), cfg, ssh.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		start := time.Now()
		for b.Loop() {
			if _, err := c.Run(context.Background(), ssh.Cmd{Args: []string{"true"}}); err != nil {
				b.Fatal(err)
			}
		}
		reused = time.Since(start) / time.Duration(b.N)
	})
	b.Run("ssh-process", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			cmd := exec.Command("ssh", "-F", "/dev/null", "-i", cfg.KeyFile, "-o", "IdentitiesOnly=yes",
				"-o", "UserKnownHostsFile="+cfg.KnownHostsFile, "-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", itoa(srv.Port),
				cfg.User+"@"+srv.Host, "true")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ssh: %v: %s", err, out)
			}
		}
		fresh = time.Since(start) / time.Duration(b.N)
	})
	if reused > 0 && fresh > 0 {
		b.Logf("reused connection %v per command, fresh ssh process %v: %.1fx faster", reused, fresh, float64(fresh)/float64(reused))
	}
}

// BenchmarkUpload64MiB measures WriteFile of a 64 MiB file whose content
// changes every time (so nothing is skipped): remote checksum, transfer,
// rename.
func BenchmarkUpload64MiB(b *testing.B) {
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, sftp := range []bool{true, false} {
		b.Run(map[bool]string{true: "sftp", false: "stdin-stream"}[sftp], func(b *testing.B) {
			_, cfg := newServer(b, sshtest.ServerOptions{NoSFTP: !sftp})
			c, err := ssh.Dial(context.Background(), cfg, ssh.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			path := filepath.Join("/home", cfg.User, "upload.bin")
			b.SetBytes(int64(len(data)))
			n := uint64(0)
			for b.Loop() {
				n++
				for i := range 8 {
					data[i] = byte(n >> (8 * i))
				}
				changed, err := c.WriteFile(context.Background(), ssh.File{Path: path, Content: data, Mode: 0o600})
				if err != nil || !changed {
					b.Fatalf("write = %v, %v", changed, err)
				}
			}
		})
	}
}
