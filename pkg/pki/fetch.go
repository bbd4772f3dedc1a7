package pki

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

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
// (for a state directory that was lost) and checks every pair: each key must be its certificate's,
// each certificate a CA. It writes nothing; Bundle.Save stores the result as a whole.
func Fetch(ctx context.Context, r Reader) (*Bundle, error) {
	content := map[string][]byte{}
	for _, name := range FileNames() {
		data, err := r.ReadFile(ctx, constants.PKIDir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("pki: fetch %s/%s: %w", constants.PKIDir, name, err)
		}
		content[name] = data
	}
	b := &Bundle{}
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
	return b, nil
}

// DeriveKey returns a 32-byte key for purpose, derived from the cluster CA's private key: secret
// to whoever lacks that key, and the same again after the state directory is rebuilt from a control
// plane (Fetch), so nothing derived from it has to be kept beside the PKI.
func (b *Bundle) DeriveKey(purpose string) []byte {
	m := hmac.New(sha256.New, b.Cluster.KeyPEM)
	m.Write([]byte("installer.dev derived key\x00" + purpose))
	return m.Sum(nil)
}
