package phases

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/pkg/exitcode"
)

// leftoverCheck is the transcript line of the check for a kubeadm an earlier run left running, a
// read every run makes on every host before its facts.
const leftoverCheck = "processes.sh kubeadm"

// TestLeftoverKubeadmWaitedFor: a kubeadm that a killed run left on a host is waited for before
// the host's facts are read (nothing else runs there meanwhile); one that does not end stops the
// run before anything changed, naming the host and the process.
func TestLeftoverKubeadmWaitedFor(t *testing.T) {
	const leftover = "4242 kubeadm upgrade apply --config /etc/kubernetes/installer/upgrade.yaml --yes"

	t.Run("ends", func(t *testing.T) {
		sc := newSimCluster(t, createSpec(t))
		sc.Host("cp1").SetLeftoverKubeadm(leftover, 2)
		var logs bytes.Buffer
		r := sc.newRun(t, nil)
		r.Log = slog.New(slog.NewTextHandler(&logs, nil))
		r.leftoverInterval = time.Millisecond
		if _, err := Execute(context.Background(), r, hostPhases()); err != nil {
			t.Fatalf("create after the leftover ended: %v", err)
		}
		cmds := sc.Host("cp1").Commands(0)
		// The facts show the kubeadm; the listings wait for it (two find it, the third not), and
		// the facts are read again.
		if len(cmds) < 5 || !strings.HasPrefix(cmds[0], "facts.sh") || !strings.HasPrefix(cmds[1], leftoverCheck) || !strings.HasPrefix(cmds[3], leftoverCheck) || !strings.HasPrefix(cmds[4], "facts.sh") {
			t.Fatalf("cp1's first commands: %q; want the facts, three process listings, then the facts again", cmds[:min(len(cmds), 6)])
		}
		if !strings.Contains(logs.String(), "kubeadm still runs on the host") || !strings.Contains(logs.String(), "4242 kubeadm upgrade apply") {
			t.Errorf("no warning naming the leftover kubeadm:\n%s", logs.String())
		}
	})

	t.Run("does not end", func(t *testing.T) {
		sc := newSimCluster(t, createSpec(t))
		sc.Host("w1").SetLeftoverKubeadm(leftover, 1<<30)
		r := sc.newRun(t, nil)
		r.leftoverInterval, r.leftoverWait = time.Millisecond, 50*time.Millisecond
		_, err := Execute(context.Background(), r, hostPhases())
		if err == nil || exitcode.Of(err) != exitcode.Failure {
			t.Fatalf("run beside a kubeadm that never ends: %v", err)
		}
		for _, want := range []string{"phase facts: ", "host w1: ", "running: 4242 kubeadm upgrade apply", "nothing was changed"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if changes := totalChanges(r); changes != 0 {
			t.Errorf("%d changes beside a running kubeadm", changes)
		}
	})
}
