// Package pins reads and writes tables of pinned SHA-256 digests: the installer's built-in table
// (pkg/versions/checksums.txt) and a spec's install.checksumsFile, both in sha256sum's format.
package pins

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Table holds the SHA-256 digests the installer trusts for the files it downloads, keyed by the file's
// path in upstream's layout (release/v1.37.2/bin/linux/amd64/kubeadm,
// containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz): a mirror keeps
// that layout, so one pin holds for upstream and every mirror of it.
type Table map[string]string

// Parse reads sha256sum lines ("<hex>  <path>" or "<hex> *<path>"); blank lines and lines
// starting with # are skipped. A path listed twice with two digests is an error.
func Parse(data []byte) (Table, error) {
	pins := Table{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"<sha256>  <path>\", got %d fields", i+1, len(f))
		}
		digest, p := strings.ToLower(f[0]), strings.TrimPrefix(f[1], "*")
		if !ValidDigest(digest) {
			return nil, fmt.Errorf("line %d: %q is not a SHA-256 digest (64 hex digits)", i+1, f[0])
		}
		if strings.HasPrefix(p, "/") || strings.Contains(p, "://") || slices.Contains(strings.Split(p, "/"), "..") {
			return nil, fmt.Errorf("line %d: %q must be a path in upstream's layout, relative to the mirror (release/v1.37.2/bin/linux/amd64/kubeadm)", i+1, p)
		}
		if old, ok := pins[p]; ok && old != digest {
			return nil, fmt.Errorf("line %d: %s is pinned twice, with two digests", i+1, p)
		}
		pins[p] = digest
	}
	return pins, nil
}

// Format writes pins as sorted sha256sum lines, the format Parse reads.
func (t Table) Format() []byte {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(t)) {
		fmt.Fprintf(&b, "%s  %s\n", t[k], k)
	}
	return []byte(b.String())
}

// ValidDigest reports whether s is a SHA-256 digest as the tables hold it: 64 lowercase hex digits.
func ValidDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
