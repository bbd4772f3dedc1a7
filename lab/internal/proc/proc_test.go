package proc

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestStopOnlyMatchingProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // reap it, as the machine's init would
	pid := cmd.Process.Pid
	// Start returns once the child's close-on-exec pipe is closed, which the
	// kernel does during execve before the new command line is in place:
	// wait for it, with a deadline.
	for deadline := time.Now().Add(5 * time.Second); !Matches(pid, "sleep", "60"); time.Sleep(time.Millisecond) {
		if !Alive(pid) || time.Now().After(deadline) {
			t.Fatalf("pid %d: alive %v, cmdline %q", pid, Alive(pid), Cmdline(pid))
		}
	}
	// A recorded PID whose command line does not match (recycled PID) is left alone.
	if err := Stop(context.Background(), pid, time.Second, "apt-cacher-ng"); err != nil {
		t.Fatal(err)
	}
	if !Alive(pid) {
		t.Fatal("Stop killed a process whose command line did not match")
	}
	if err := Stop(context.Background(), pid, 2*time.Second, "sleep"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("process still running after Stop")
	}
	if err := Stop(context.Background(), pid, time.Second, "sleep"); err != nil {
		t.Fatalf("Stop of a gone process: %v", err)
	}
}
