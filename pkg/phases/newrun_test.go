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

// TestNewRunReadOnlyHosts: hosts only read from are part of the run (in spec order) but not
// targets; a host named both ways is a target; an unknown read-only host is an error.
func TestNewRunReadOnlyHosts(t *testing.T) {
	c := testCluster(4) // h0..h3
	names := func(hs []*Host) string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Name())
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		targets, readOnly []string
		all, want         string
	}{
		{[]string{"h3"}, []string{"h0"}, "h0 h3", "h3"},
		{[]string{"h2"}, []string{"h0", "h1", "h2"}, "h0 h1 h2", "h2"},
		{nil, []string{"h1"}, "h0 h1 h2 h3", "h0 h1 h2 h3"},
	} {
		r, err := NewRun(c, tc.targets, tc.readOnly...)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(r.All()); got != tc.all {
			t.Errorf("NewRun(%v, %v): all %s, want %s", tc.targets, tc.readOnly, got, tc.all)
		}
		if got := names(r.Targets()); got != tc.want {
			t.Errorf("NewRun(%v, %v): targets %s, want %s", tc.targets, tc.readOnly, got, tc.want)
		}
	}
	if _, err := NewRun(c, []string{"h1"}, "nope"); err == nil || err.Error() != "host nope is not in the spec" {
		t.Errorf("unknown read-only host: %v", err)
	}
}
