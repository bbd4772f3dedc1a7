package phases

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// dropsOn is a host whose connection is lost when it is asked one particular command.
type dropsOn struct {
	ssh.Runner
	match func(ssh.Cmd) bool
}

func (d dropsOn) Run(ctx context.Context, cmd ssh.Cmd) (ssh.Result, error) {
	if d.match(cmd) {
		return ssh.Result{}, &ssh.ConnectionLostError{Host: d.Host(), Err: io.EOF}
	}
	return d.Runner.Run(ctx, cmd)
}

// TestLostQueryIsNotAnAnswer: when the connection drops while a phase asks whether a unit is
// enabled and running, the phase fails with the lost connection instead of reading the empty
// answer as "disabled" and going on to enable it (the error was dropped, and a later command's
// failure, or none, was reported instead).
func TestLostQueryIsNotAnAnswer(t *testing.T) {
	for _, c := range []struct {
		name   string
		match  func(ssh.Cmd) bool
		enable string
	}{
		{"kubelet is-enabled", func(cmd ssh.Cmd) bool {
			return strings.Join(cmd.Args, " ") == "systemctl is-enabled kubelet"
		}, "systemctl enable kubelet"},
		{"containerd state", func(cmd ssh.Cmd) bool {
			a := cmd.Args
			return len(a) > 3 && a[0] == "sh" && strings.Contains(a[2], "systemctl is-active") && a[len(a)-1] == "containerd"
		}, "systemctl enable containerd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := newSimCluster(t)
			r, err := NewRun(sc.spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.PKI, r.Inputs, r.StateDir = sc.pki, sc.in, state.Dir(t.TempDir())
			r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) {
				if h.Name == "cp1" {
					return dropsOn{Runner: sc.hosts[h.Name], match: c.match}, nil
				}
				return sc.hosts[h.Name], nil
			}
			_, err = Execute(context.Background(), r, hostPhases())
			var lost *ssh.ConnectionLostError
			if !errors.As(err, &lost) {
				t.Fatalf("run error %v; want the lost connection", err)
			}
			for _, cmd := range sc.hosts["cp1"].Commands() {
				if strings.Join(cmd, " ") == c.enable {
					t.Errorf("ran %q after the query was lost", c.enable)
				}
			}
		})
	}
}
