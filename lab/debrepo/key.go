package debrepo

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"installer.dev/installer/lab/internal/flock"
)

// Key is the lab's repository signing key. The private half stays in the lab cache (0600) and is
// never logged; PublicFile is what a spec's packageRepositoryKeyFile points at.
type Key struct {
	entity     *openpgp.Entity
	PublicFile string
}

// Fingerprint is the key's hex fingerprint.
func (k *Key) Fingerprint() string { return fmt.Sprintf("%X", k.entity.PrimaryKey.Fingerprint) }

// Key file names inside <cache>/debrepo/key/.
const (
	privateKeyName = "signing-key.asc"
	publicKeyName  = "signing-key.pub.asc"
)

// PublicKeyFile is where the public key lives for a lab cache directory.
func PublicKeyFile(cacheDir string) string {
	return filepath.Join(cacheDir, "debrepo", "key", publicKeyName)
}

// signingConfig makes v4 Ed25519 (legacy EdDSA) keys with SHA-512 signatures: what Debian 12's gpgv
// verifies without a weak-algorithm warning (v6 keys would not verify there at all).
func signingConfig(now time.Time) *packet.Config {
	return &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519,
		DefaultHash: crypto.SHA512, Time: func() time.Time { return now }}
}

// LoadOrCreateKey reads the signing key from <cache>/debrepo/key, making one on first use.
func LoadOrCreateKey(ctx context.Context, cacheDir string) (*Key, error) {
	dir := filepath.Join(cacheDir, "debrepo", "key")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	lock, err := flock.Acquire(ctx, filepath.Join(cacheDir, "locks", "debrepo-key.lock"))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	priv := filepath.Join(dir, privateKeyName)
	data, err := os.ReadFile(priv)
	if errors.Is(err, os.ErrNotExist) {
		return createKey(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	ents, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil || len(ents) != 1 || ents[0].PrivateKey == nil {
		return nil, fmt.Errorf("signing key %s: not one armored private key (%v)", priv, err)
	}
	return &Key{entity: ents[0], PublicFile: filepath.Join(dir, publicKeyName)}, nil
}

func createKey(dir string) (*Key, error) {
	cfg := signingConfig(time.Now())
	e, err := openpgp.NewEntity("installer lab apt repository", "lab only", "lab@installer.invalid", cfg)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	var pub, priv bytes.Buffer
	if err := armored(&pub, openpgp.PublicKeyType, e.Serialize); err != nil {
		return nil, err
	}
	if err := armored(&priv, openpgp.PrivateKeyType, func(w io.Writer) error { return e.SerializePrivate(w, cfg) }); err != nil {
		return nil, err
	}
	// The public half first: a private file without its public one is never left behind as "done".
	pubPath := filepath.Join(dir, publicKeyName)
	if err := writeFileAtomic(pubPath, pub.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, privateKeyName), priv.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return &Key{entity: e, PublicFile: pubPath}, nil
}

func armored(buf *bytes.Buffer, blockType string, serialize func(io.Writer) error) error {
	w, err := armor.Encode(buf, blockType, nil)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if err := serialize(w); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	buf.WriteByte('\n')
	return nil
}

// writeFileAtomic writes through a temporary file created with the final mode, so a secret is never
// readable by others even for a moment.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
