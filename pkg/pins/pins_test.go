package pins

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	got, err := Parse([]byte("# comment\n\n" + strings.ToUpper(a) + "  release/v1.37.2/bin/linux/amd64/kubeadm\n" +
		b + " *opencontainers/runc/releases/download/v1.5.3/runc.amd64\n" +
		a + "  release/v1.37.2/bin/linux/amd64/kubeadm\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["release/v1.37.2/bin/linux/amd64/kubeadm"] != a || got["opencontainers/runc/releases/download/v1.5.3/runc.amd64"] != b {
		t.Fatalf("%v", got)
	}
	again, err := Parse(got.Format())
	if err != nil || len(again) != 2 || again["release/v1.37.2/bin/linux/amd64/kubeadm"] != a {
		t.Fatalf("Format does not read back: %v %v", again, err)
	}
	if want := b + "  opencontainers/runc/releases/download/v1.5.3/runc.amd64\n" + a + "  release/v1.37.2/bin/linux/amd64/kubeadm\n"; string(got.Format()) != want {
		t.Errorf("Format = %q", got.Format())
	}
	for in, want := range map[string]string{
		a + "\n":                                  "line 1: want",
		"xyz  release/x\n":                        `"xyz" is not a SHA-256 digest`,
		"\n" + a[:63] + "  release/x\n":           "line 2:",
		a + "  /usr/bin/kubeadm\n":                "must be a path in upstream's layout",
		a + "  https://dl.k8s.io/release/x\n":     "must be a path in upstream's layout",
		a + "  release/../../etc/passwd\n":        "must be a path in upstream's layout",
		a + "  release/x\n" + b + "  release/x\n": "line 2: release/x is pinned twice",
		a + "  two words here\n":                  "got 4 fields",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", in, err, want)
		}
	}
}
