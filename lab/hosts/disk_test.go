package hosts

import (
	"strings"
	"testing"
)

func TestLowDisk(t *testing.T) {
	for _, tc := range []struct {
		avail, total uint64
		warn         string
	}{
		{43, 252, "only 17% of the disk"}, // the machine where scenario 10's Service requests failed
		{64, 252, ""},
		{0, 0, ""},
	} {
		got, err := lowDisk(tc.avail, tc.total)
		if err != nil || (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
			t.Errorf("lowDisk(%d, %d) = %q, %v; want %q", tc.avail, tc.total, got, err, tc.warn)
		}
	}
	if _, err := diskWarning(t.TempDir() + "/not/yet/made"); err != nil {
		t.Error(err)
	}
}
