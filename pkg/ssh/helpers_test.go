package ssh

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		name, in string
		secrets  []string
		want     string
	}{
		{"given secret", "password hunter2 rejected", []string{"hunter2"}, "password <redacted> rejected"},
		{"empty secret ignored", "nothing here", []string{""}, "nothing here"},
		{"bootstrap token", "kubeadm join --token abcdef.0123456789abcdef x", nil, "kubeadm join --token <redacted> x"},
		{"private key", "a\n-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\nb", nil, "a\n<redacted>\nb"},
		{"truncated private key", "x -----BEGIN RSA PRIVATE KEY-----\nAAAA", nil, "x <redacted>"},
		{"not a token", "version v1.36.5", nil, "version v1.36.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := redact(tc.in, tc.secrets); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name, in        string
		lines, maxBytes int
		want            string
	}{
		{"short", "one\ntwo\n", 10, 100, "one | two"},
		{"last lines", "1\n2\n3\n4\n", 2, 100, "3 | 4"},
		{"byte cap", "abcdefghij", 10, 4, "...ghij"},
		{"byte cap keeps utf-8 valid", "ééé", 10, 3, "...é"},
		{"blank", "\n\n", 10, 100, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tail(tc.in, tc.lines, tc.maxBytes); got != tc.want {
				t.Errorf("tail(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseFileState(t *testing.T) {
	tests := []struct {
		name, in string
		want     FileState
		wantErr  string
	}{
		{"missing", "missing\n", FileState{}, ""},
		{"present", "600 root adm\n" + strings.Repeat("a", 64) + "  /etc/x\n", FileState{Exists: true, Mode: 0o600, Owner: "root", Group: "adm", SHA256: strings.Repeat("a", 64)}, ""},
		{"setgid dir-like mode", "2755 a b\nff  /x\n", FileState{Exists: true, Mode: 0o2755, Owner: "a", Group: "b", SHA256: "ff"}, ""},
		{"garbage", "what\n", FileState{}, "unexpected file state"},
		{"bad mode", "9z a b\nff  /x\n", FileState{}, "unexpected mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFileState(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseFileState error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFileState = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestOwnedBy(t *testing.T) {
	f := FileState{Exists: true, Owner: "root", Group: "adm"}
	for want, ok := range map[string]bool{"": true, "root": true, "root:adm": true, "root:root": false, "nobody": false} {
		if got := f.ownedBy(want); got != ok {
			t.Errorf("ownedBy(%q) = %v, want %v", want, got, ok)
		}
	}
}

func TestLinePrefixer(t *testing.T) {
	var out bytes.Buffer
	p := &linePrefixer{w: &out, prefix: "[cp1] "}
	for _, chunk := range []string{"hel", "lo\nwor", "ld\n", "partial"} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	p.flush()
	if want := "[cp1] hello\n[cp1] world\n[cp1] partial\n"; out.String() != want {
		t.Fatalf("prefixed output = %q, want %q", out.String(), want)
	}

	// A private key streams in pieces (-v): none of its lines get through, the lines after it do.
	out.Reset()
	p = &linePrefixer{w: &out, prefix: "[cp1] "}
	key := "before\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkey\nAoGCCqGSM49\n-----END EC PRIVATE KEY-----\nafter abcdef.0123456789abcdef\n"
	for i := 0; i < len(key); i += 7 {
		if _, err := p.Write([]byte(key[i:min(i+7, len(key))])); err != nil {
			t.Fatal(err)
		}
	}
	p.flush()
	if want := "[cp1] before\n[cp1] <redacted>\n[cp1] after <redacted>\n"; out.String() != want {
		t.Fatalf("streamed key: %q, want %q", out.String(), want)
	}
}

func TestNormalizeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1:22":   "10.0.0.1",
		"10.0.0.1:2222": "[10.0.0.1]:2222",
		"[::1]:2222":    "[::1]:2222",
		"host.example":  "host.example",
	} {
		if got := normalizeAddr(in); got != want {
			t.Errorf("normalizeAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Setenv("HOME", "/home/op")
	c, err := Config{Address: "10.0.0.1", KeyFile: "~/.ssh/id", Bastion: &BastionConfig{Address: "b"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "10.0.0.1" || c.Port != 22 || c.User != "root" || c.HostKeyPolicy != HostKeyStrict ||
		c.KnownHostsFile != "/home/op/.ssh/known_hosts" || c.KeyFile != "/home/op/.ssh/id" ||
		c.Bastion.Port != 22 || c.Bastion.User != "root" {
		t.Fatalf("defaults = %+v (bastion %+v)", c, *c.Bastion)
	}
	for _, bad := range []Config{{}, {Address: "x", HostKeyPolicy: "no"}, {Address: "x", Bastion: &BastionConfig{}}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("withDefaults(%+v) accepted", bad)
		}
	}
}
