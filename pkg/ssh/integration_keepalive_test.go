package ssh_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// blackhole forwards connections to a real sshd until cut: from then on every byte either way is
// dropped (the TCP connections stay open, as when a host loses power or a firewall drops its
// traffic), and a new connection never completes (a SYN nobody answers).
type blackhole struct {
	cut atomic.Bool
}

func (b *blackhole) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if b.cut.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var d net.Dialer
	server, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	client, ours := net.Pipe()
	go b.forward(server, ours)
	go b.forward(ours, server)
	// The host key check looks at the peer's address: the real connection's.
	return addressedConn{Conn: client, local: server.LocalAddr(), remote: server.RemoteAddr()}, nil
}

type addressedConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addressedConn) LocalAddr() net.Addr  { return c.local }
func (c addressedConn) RemoteAddr() net.Addr { return c.remote }

// forward copies src to dst until the cut, then reads and drops everything (a writer into a
// blackhole does not block at once either).
func (b *blackhole) forward(dst io.WriteCloser, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !b.cut.Load() {
				_ = dst.Close()
			}
			return
		}
	}
}

// TestDeadHostDetected: with the default keepalives, a host cut off in the middle of a command is
// noticed within DeadAfter plus one interval, a retried command gives up after the short re-dial,
// both well within 20 s; a host whose CPUs are saturated is not taken for dead.
func TestDeadHostDetected(t *testing.T) {
	srv, cfg := newServer(t, sshtest.ServerOptions{})

	t.Run("command on a cut connection", func(t *testing.T) {
		t.Parallel()
		var hole blackhole
		c := dial(t, cfg, ssh.Options{Dial: hole.dial})
		marker := "cut-marker-" + itoa(srv.Port)
		result := make(chan error, 1)
		go func() {
			_, err := c.Run(ctxT(t), ssh.Cmd{Args: sh(`sleep 60; echo "$1"`, marker)})
			result <- err
		}()
		waitUntil(t, func() bool { return srv.Running(marker) })
		hole.cut.Store(true)
		start := time.Now()
		err := <-result
		took := time.Since(start)
		t.Logf("MEASURE a command on a cut connection failed after %s", took.Round(10*time.Millisecond))
		errorAs[*ssh.ConnectionLostError](t, err)
		if took < 9*time.Second || took > 14*time.Second {
			t.Fatalf("noticed after %s, want DeadAfter (10 s) to DeadAfter plus one keepalive interval", took)
		}
	})

	t.Run("retried command: short re-dial", func(t *testing.T) {
		t.Parallel()
		var hole blackhole
		c := dial(t, cfg, ssh.Options{Dial: hole.dial})
		hole.cut.Store(true)
		start := time.Now()
		_, err := c.Run(ctxT(t), ssh.Cmd{Args: []string{"true"}, Idempotent: true})
		took := time.Since(start)
		t.Logf("MEASURE a retried command on a cut host failed after %s: %v", took.Round(10*time.Millisecond), err)
		e := errorAs[*ssh.UnreachableError](t, err)
		wantContains(t, "error", e.Error(), "host h1", "cannot reach")
		if took > 20*time.Second {
			t.Fatalf("gave up after %s, want at most 20 s", took)
		}
	})

	t.Run("saturated CPUs: no false alarm", func(t *testing.T) {
		t.Parallel()
		var logs sshtest.SyncBuffer
		c := dial(t, cfg, ssh.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		burners := 4 * runtime.NumCPU()
		for range burners {
			burn := exec.Command("sh", "-c", "while :; do :; done")
			if err := burn.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = burn.Process.Kill(); _ = burn.Wait() })
		}
		start := time.Now()
		out := run(t, c, ssh.Cmd{Args: sh(`sleep 25; echo done`)})
		t.Logf("MEASURE a 25 s command with %d CPU burners beside it: %s, %q", burners, time.Since(start).Round(10*time.Millisecond), out)
		if out != "done" || strings.Contains(logs.String(), "keepalives") {
			t.Fatalf("output %q; log:\n%s", out, logs.String())
		}
	})
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
	}
}
