package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"sort"

	"installer.dev/installer/pkg/ssh"
)

// File is one file the installer writes on a host (or applies to the cluster). Every renderer returns
// a list of them; `render` writes them to disk, `plan` prints them, phases upload them.
type File struct {
	// Path is the absolute path on the host ("/etc/containerd/config.toml"); for cluster add-ons a
	// path relative to the render output's cluster/ directory ("cni.yaml").
	Path string
	Mode fs.FileMode
	// Content is the real content, secrets included; only uploads may use it.
	Content []byte
	// Sensitive files (keys, tokens, passwords) are written 0600 at most and never shown: Display
	// returns Masked instead of Content.
	Sensitive bool
	// Masked is what people may read in place of a sensitive Content (secrets replaced by <redacted>
	// or, for bootstrap tokens, kubeadm's documentation example). Empty means fully hidden.
	Masked []byte
	// NoReplace files are written only where they are absent (or already identical): a different
	// file in their place is someone else's (the cluster's CAs and keys) and is never overwritten.
	NoReplace bool
}

// Redacted is ssh.Redacted, the one format for a masked secret everywhere people read.
const Redacted = ssh.Redacted

// PlaceholderToken is kubeadm's documentation example token, shown instead of the real bootstrap
// token so `kubeadm config validate` still accepts rendered files.
const PlaceholderToken = "abcdef.0123456789abcdef"

// Display returns what may be shown to people: Content, or Masked for sensitive files.
func (f File) Display() []byte {
	if f.Sensitive {
		if f.Masked != nil {
			return f.Masked
		}
		return []byte(Redacted + "\n")
	}
	return f.Content
}

// SHA256 is the hex checksum of the real content (uploads compare it with the host's copy).
func (f File) SHA256() string {
	sum := sha256.Sum256(f.Content)
	return hex.EncodeToString(sum[:])
}

// SortFiles orders files by path so every listing and upload order is stable.
func SortFiles(files []File) {
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}
