// Package pgpkey reads the fingerprint of an OpenPGP public key: what the installer compares with a
// pinned value before a package repository's signing key is trusted.
package pgpkey

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Fingerprint returns the upper-case hex fingerprint of the one primary key in data (armored or
// binary). A key ring with more than one primary key is refused: apt would trust every key in it.
func Fingerprint(data []byte) (string, error) {
	read := openpgp.ReadKeyRing
	if blocks := bytes.Count(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")); blocks > 1 {
		// The armor reader stops after the first block; whoever reads the file later may not.
		return "", fmt.Errorf("%d armored key blocks in one file; want exactly one key", blocks)
	} else if blocks == 1 {
		read = openpgp.ReadArmoredKeyRing
	}
	keys, err := read(bytes.NewReader(data))
	if err != nil {
		return "", fmt.Errorf("not an OpenPGP public key: %w", err)
	}
	switch len(keys) {
	case 0:
		return "", errors.New("no OpenPGP public key in it")
	case 1:
		return fmt.Sprintf("%X", keys[0].PrimaryKey.Fingerprint), nil
	}
	var fps []string
	for _, k := range keys {
		fps = append(fps, fmt.Sprintf("%X", k.PrimaryKey.Fingerprint))
	}
	return "", fmt.Errorf("%d keys in one file (%s); want exactly one", len(keys), strings.Join(fps, ", "))
}

// Normalize writes a fingerprint as Fingerprint does: upper-case hex without spaces.
func Normalize(fp string) string {
	return strings.ToUpper(strings.ReplaceAll(fp, " ", ""))
}

// Valid reports whether fp (normalized) is a v4 (40 hex digits) or v6 (64) fingerprint.
func Valid(fp string) bool {
	if len(fp) != 40 && len(fp) != 64 {
		return false
	}
	for _, r := range fp {
		if !strings.ContainsRune("0123456789ABCDEF", r) {
			return false
		}
	}
	return true
}
