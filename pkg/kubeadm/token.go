package kubeadm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

// TokenTTL is how long the bootstrap token made by init lives: long enough for every join of one
// run, short enough that a leaked file is soon worthless. `join node` makes its own fresh token.
const TokenTTL = time.Hour

// tokenPattern is kubeadm's bootstrap token format (k8s.io/cluster-bootstrap/token/api).
var tokenPattern = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// GenerateToken returns a fresh bootstrap token "[a-z0-9]{6}.[a-z0-9]{16}" from crypto/rand. It is
// for uploads only: never log it, and show manifests.PlaceholderToken wherever people read.
func GenerateToken() (string, error) { return generateToken(rand.Reader) }

func generateToken(r io.Reader) (string, error) {
	out := make([]byte, 0, 23)
	// Rejection sampling keeps every character equally likely: 252 is the largest multiple of 36
	// that fits in a byte.
	var b [1]byte
	for len(out) < 23 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("bootstrap token: %w", err)
		}
		if b[0] >= 252 {
			continue
		}
		out = append(out, tokenAlphabet[int(b[0])%len(tokenAlphabet)])
		if len(out) == 6 {
			out = append(out, '.')
		}
	}
	return string(out), nil
}

// ValidateToken checks the bootstrap token format without ever printing the token.
func ValidateToken(token string) error {
	if token == "" {
		return errors.New("no bootstrap token")
	}
	if !tokenPattern.MatchString(token) {
		return errors.New("the bootstrap token does not match [a-z0-9]{6}.[a-z0-9]{16}")
	}
	return nil
}
