//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// bootstrapTokenLike is kubeadm's token format.
var bootstrapTokenLike = regexp.MustCompile(`\b[a-z0-9]{6}\.[a-z0-9]{16}\b`)

// checkNoSecrets greps every host log of the state directory and the given outputs of the
// installer (stdout and stderr, plan and -v included) for the cluster's secrets: the state
// directory's private keys (any line of their bodies), its generated secrets (the VRRP password, the
// config-hash key), anything shaped like a bootstrap token and any private key's body after a BEGIN
// line. It must find none (security review: nothing leaked).
func checkNoSecrets(t *testing.T, c *labCluster, runs ...installerRun) {
	t.Helper()
	state := c.Lab.StateDir()
	var needles []string
	_ = filepath.WalkDir(filepath.Join(state, "pki"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".key") {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, l := range strings.Split(string(b), "\n") {
			if len(l) >= 40 && !strings.HasPrefix(l, "-----") {
				needles = append(needles, l)
			}
		}
		return nil
	})
	for _, f := range []string{"vrrp-password", "config-hash-key"} {
		if b, err := os.ReadFile(filepath.Join(state, "secrets", f)); err == nil && len(bytes.TrimSpace(b)) >= 6 {
			needles = append(needles, string(bytes.TrimSpace(b)))
		}
	}
	if len(needles) == 0 {
		errorf(t, "secret scan: no key or secret in %s to look for", state)
		return
	}
	texts := map[string]string{}
	_ = filepath.WalkDir(filepath.Join(state, "logs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			texts[p] = string(b)
		}
		return nil
	})
	for i, r := range runs {
		texts["run "+string(rune('1'+i))+" stdout"] = r.Stdout
		texts["run "+string(rune('1'+i))+" stderr"] = r.Stderr
	}
	scanned := 0
	for name, text := range texts {
		scanned += len(text)
		for _, n := range needles {
			if strings.Contains(text, n) {
				errorf(t, "secret scan: %s holds a secret of the state directory (%.8s...)", name, n)
			}
		}
		if m := bootstrapTokenLike.FindString(text); m != "" {
			errorf(t, "secret scan: %s holds a bootstrap token shape %.6s...", name, m)
		}
		sc := bufio.NewScanner(strings.NewReader(text))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		afterBegin := false
		for sc.Scan() {
			l := sc.Text()
			if afterBegin && !strings.Contains(l, "<redacted>") && strings.TrimSpace(strings.TrimLeft(l, " |")) != "" {
				errorf(t, "secret scan: %s shows a private key's body after its BEGIN line: %.20s...", name, l)
			}
			afterBegin = strings.Contains(l, "PRIVATE KEY-----") && strings.Contains(l, "BEGIN") && !strings.Contains(l, "END")
		}
	}
	t.Logf("MEASURE secret scan: %d texts (%d KB: host logs and installer output), %d secrets looked for, none found unless reported above",
		len(texts), scanned/1024, len(needles))
}
