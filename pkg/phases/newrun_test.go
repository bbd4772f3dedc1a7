package phases

import (
	"strings"
	"testing"
)

// TestNewRunTargetsOnlyNamedHosts: a run over named hosts targets exactly those, whatever their
// place in the spec (a host named early once made every later host a target too).
func TestNewRunTargetsOnlyNamedHosts(t *testing.T) {
	c := testCluster(4) // h0..h3
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{nil, "h0 h1 h2 h3"},
		{[]string{"h0"}, "h0"},
		{[]string{"h1"}, "h1"},
		{[]string{"h2", "h0"}, "h0 h2"},
		{[]string{"h3"}, "h3"},
	} {
		r, err := NewRun(c, tc.names)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range r.Targets() {
			got = append(got, h.Name())
		}
		if strings.Join(got, " ") != tc.want || len(r.All()) != len(got) {
			t.Errorf("NewRun(%v): targets %v, all %d; want %s", tc.names, got, len(r.All()), tc.want)
		}
	}
	if _, err := NewRun(c, []string{"h1", "nope"}); err == nil || err.Error() != "host nope is not in the spec" {
		t.Errorf("unknown host: %v", err)
	}
}
