package phases

import (
	"context"
	"fmt"
	"strings"
	"time"

	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// leftoverWait bounds how long a run waits for a kubeadm that an earlier run left running. kubeadm's
// own waits (the control plane, etcd, static pods) end within a few minutes each.
const leftoverWait = 10 * time.Minute

// waitForLeftoverKubeadm waits until no kubeadm runs on h. An installer that is killed (kill -9, a
// closed terminal) leaves its kubeadm running on the host: until it ends, no decision may be taken
// from the host's state (is its init unfinished? is its control plane upgraded?) and no other
// kubeadm may start there. A kubeadm the administrator runs is waited for alike.
func waitForLeftoverKubeadm(ctx context.Context, r *Run, h *Host) error {
	interval, wait := r.leftoverInterval, r.leftoverWait
	if interval == 0 {
		interval = 2 * time.Second
	}
	if wait == 0 {
		wait = leftoverWait
	}
	warned := false
	start := time.Now()
	err := kubeapi.Poll(ctx, interval, wait, "kubeadm on "+h.Name()+" finished", func(ctx context.Context) (bool, string, error) {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Processes.Args("kubeadm"), Idempotent: true})
		if err != nil {
			return false, "", err
		}
		running := strings.Join(strings.Fields(ssh.Redact(string(res.Stdout), nil)), " ")
		if running == "" {
			return true, "", nil
		}
		if !warned {
			warned = true
			r.Log.Warn("kubeadm still runs on the host (left by an earlier run that was stopped?); waiting for it to finish before reading the host",
				"host", h.Name(), "process", running)
		}
		return false, "running: " + running, nil
	})
	if err != nil {
		return hostErr(h.Name(), fmt.Errorf("%w; nothing was changed. Wait for that kubeadm to finish (or stop it), then run again", err))
	}
	if warned {
		r.Log.Info("the earlier kubeadm finished", "host", h.Name(), "waited", time.Since(start).Round(time.Second))
	}
	return nil
}
