package main

import (
	"testing"

	"installer.dev/installer/pkg/phases"
	"installer.dev/installer/pkg/state"
)

// TestStateDirLayoutAgrees: pkg/phases still names two files of the state directory itself; they
// must be where state.Dir says (the commands print and read state.Dir's paths).
func TestStateDirLayoutAgrees(t *testing.T) {
	d := state.Dir("/srv/state/prod")
	if got, want := phases.AdminConfPath(d.String()), d.AdminConf(); got != want {
		t.Errorf("phases.AdminConfPath = %s, state.Dir.AdminConf = %s", got, want)
	}
	if got, want := phases.SnapshotDir(d.String()), d.Snapshots(); got != want {
		t.Errorf("phases.SnapshotDir = %s, state.Dir.Snapshots = %s", got, want)
	}
}
