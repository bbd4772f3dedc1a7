package phases

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// logLines returns the log's lines without their time= field.
func logLines(b *bytes.Buffer) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if _, rest, ok := strings.Cut(l, " "); ok && strings.HasPrefix(l, "time=") {
			l = rest
		}
		out = append(out, l)
	}
	return out
}

// TestUpgradeDryRunLogsWhatWouldHappen: upgrade --dry-run changes nothing, so its log never says a
// control plane or node was upgraded (it did, for every host); it says what would be.
func TestUpgradeDryRunLogsWhatWouldHappen(t *testing.T) {
	sc := newUpgradeCluster(t, "v1.36.5", "cp1", "w1")
	r := sc.newRun(t, nil)
	var logs bytes.Buffer
	r.DryRun = true
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	o := testUpgradeOptions
	o.pollInterval = time.Millisecond
	if _, err := Execute(context.Background(), r, Upgrade(o)); err != nil {
		t.Fatal(err)
	}
	sc.assertAtNothingChanged(t, "v1.36.5")
	var got []string
	for _, l := range logLines(&logs) {
		if strings.Contains(l, " done\"") {
			t.Errorf("dry run logged %s", l)
		}
		if strings.Contains(l, "would run (dry run)") {
			got = append(got, l)
		}
	}
	want := []string{
		`level=INFO msg="kubeadm upgrade apply would run (dry run)" host=cp1`,
		`level=INFO msg="upgrade of the control plane would run (dry run)" host=cp1 version=v1.37.2`,
		`level=INFO msg="upgrade of the node would run (dry run)" host=cp1 version=v1.37.2`,
		`level=INFO msg="kubeadm upgrade node would run (dry run)" host=w1`,
		`level=INFO msg="upgrade of the node would run (dry run)" host=w1 version=v1.37.2`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dry-run log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPlanLogsNoInitDone: plan on fresh hosts records kubeadm init but never logs it as done.
func TestPlanLogsNoInitDone(t *testing.T) {
	sc := newSimCluster(t, createSpec(t))
	r := sc.newRun(t, nil)
	var logs bytes.Buffer
	r.DryRun = true
	r.Log = slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := Execute(context.Background(), r, hostPhases()); err != nil {
		t.Fatal(err)
	}
	var sawWould bool
	for _, l := range logLines(&logs) {
		if strings.Contains(l, "init done") {
			t.Errorf("plan logged %s", l)
		}
		sawWould = sawWould || l == `level=INFO msg="kubeadm init would run (dry run)" host=cp1`
	}
	if !sawWould {
		t.Errorf("plan did not log that kubeadm init would run:\n%s", logs.String())
	}
}
