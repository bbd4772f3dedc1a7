package phases

import (
	"errors"
	"testing"

	"installer.dev/installer/pkg/ssh"
)

// TestLostQueryIsNotAnAnswer: when the connection drops while a phase asks whether a unit is
// enabled and running, the phase fails with the lost connection instead of reading the empty
// answer as "disabled" and going on to enable it (the error was dropped, and a later command's
// failure, or none, was reported instead).
func TestLostQueryIsNotAnAnswer(t *testing.T) {
	for _, c := range []struct{ name, step, enable string }{
		{"kubelet is-enabled", "systemctl is-enabled kubelet", "systemctl enable kubelet"},
		{"containerd state", "unit-state.sh containerd", "systemctl enable containerd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := newSimCluster(t, createSpec(t))
			sc.Host("cp1").FailAt(c.step).Lose()
			_, err := sc.run(t, hostPhases())
			var lost *ssh.ConnectionLostError
			if !errors.As(err, &lost) {
				t.Fatalf("run error %v; want the lost connection", err)
			}
			for _, cmd := range sc.Host("cp1").Commands(0) {
				if cmd == c.enable {
					t.Errorf("ran %q after the query was lost", c.enable)
				}
			}
		})
	}
}
