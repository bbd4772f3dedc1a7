package pki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"installer.dev/installer/pkg/constants"
)

// Reader reads one file from a host. pkg/ssh's Runner fits through a closure:
//
//	pki.ReaderFunc(func(ctx context.Context, p string) ([]byte, error) {
//		return r.ReadFile(ctx, p, ssh.ReadOptions{Sudo: true})
//	})
type Reader interface {
	ReadFile(ctx context.Context, path string) ([]byte, error)
}

// ReaderFunc adapts a function to Reader.
type ReaderFunc func(ctx context.Context, path string) ([]byte, error)

// ReadFile calls f.
func (f ReaderFunc) ReadFile(ctx context.Context, path string) ([]byte, error) { return f(ctx, path) }

// Fetch reads the CAs and the service-account key pair from a control plane's /etc/kubernetes/pki
// (for a state directory that was lost), checks every pair, and stores them in dir. A file already
// in dir is kept when identical and is an error when it differs: two different CAs for one cluster
// is exactly what the operator must sort out by hand.
func Fetch(ctx context.Context, r Reader, dir string) (*Bundle, error) {
	content := map[string][]byte{}
	for _, name := range FileNames() {
		data, err := r.ReadFile(ctx, constants.PKIDir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("pki: fetch %s/%s: %w", constants.PKIDir, name, err)
		}
		content[name] = data
	}
	b := &Bundle{Dir: dir}
	for _, ca := range CAs() {
		kp, err := ParseCA(ca, content[ca.BaseName+".crt"], content[ca.BaseName+".key"])
		if err != nil {
			return nil, fmt.Errorf("pki: fetched %s: %w", ca.BaseName, err)
		}
		*b.pair(ca) = kp
	}
	sa, err := ParseSA(content[SAKeyName], content[SAPubName])
	if err != nil {
		return nil, fmt.Errorf("pki: fetched service-account keys: %w", err)
	}
	b.SAKey, b.SAKeyPEM, b.SAPubPEM = sa, content[SAKeyName], content[SAPubName]

	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	if err := ensureDir(filepath.Join(dir, "etcd")); err != nil {
		return nil, err
	}
	// Check everything before writing anything, so a conflict leaves dir as it was.
	var missing []string
	for _, name := range FileNames() {
		local, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, name)
		case err != nil:
			return nil, fmt.Errorf("pki: %w", err)
		case !bytes.Equal(local, content[name]):
			return nil, fmt.Errorf("pki: %s differs from the control plane's %s/%s; refusing to replace it", filepath.Join(dir, name), constants.PKIDir, name)
		}
	}
	for _, name := range missing {
		mode := CertFileMode
		if filepath.Ext(name) == ".key" {
			mode = KeyFileMode
		}
		if err := writeNew(filepath.Join(dir, name), content[name], mode); err != nil {
			return nil, err
		}
		b.Written = append(b.Written, name)
	}
	return b, nil
}
