package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for the bench's own child clients (run starts
// os.Executable with "engine" or "floor").
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && (os.Args[1] == childEngine || os.Args[1] == childFloor) {
		if err := runChild(os.Args[1], os.Args[2:]); err != nil {
			os.Stderr.WriteString("scale: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRoundTripsAgainstRealSSHD runs the bench on two real sshds: the installer's engine opens
// exactly the sessions the bare client does, cold, and no more than two per host when converged
// (the facts, one comparison of every file). measure itself checks that each cold run wrote
// every file and each converged run none, with the installer's rendered content and modes.
func TestRoundTripsAgainstRealSSHD(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("the bench's sshds log in as root: run as root (make test does)")
	}
	results, err := run(context.Background(), options{sizes: []int{2}, dir: t.TempDir(), clients: "installer,floor", modes: "cold,converged", concurrency: 32, port: 2322})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]result{}
	for _, r := range results {
		got[r.Client+"/"+r.Mode] = r
	}
	for _, mode := range []string{"cold", "converged"} {
		installer, floor := got["installer/"+mode], got["floor/"+mode]
		if installer.Sessions != floor.Sessions || installer.Connections != 2 {
			t.Errorf("%s: installer %d sessions on %d connections, floor %d sessions; want the floor's, on one connection per host",
				mode, installer.Sessions, installer.Connections, floor.Sessions)
		}
	}
	if c := got["installer/converged"]; c.MaxSessions > 2 {
		t.Errorf("converged: %d sessions on one host, want at most 2 (facts, one comparison of all files)", c.MaxSessions)
	}
}
