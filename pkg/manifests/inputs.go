package manifests

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"installer.dev/installer/pkg/pins"
)

// Inputs are what renderers need beyond the spec and the facts: contents of local files the spec
// names, fetched manifests and secret values. Callers gather them (LoadInputs does it for a
// resolved spec), so renderers never read files, the network or the environment, and the same
// inputs always give the same files.
type Inputs struct {
	// Files holds the content of the local files the spec names (images.mirrors[].caFile,
	// cloudProvider.cloudConfigFile, install.packageRepositoryKeyFile), keyed by the path exactly as
	// the (resolved) spec writes it.
	Files map[string][]byte
	// CNIManifest is the calico, cilium or custom manifest, already verified against cni.sha256.
	CNIManifest []byte
	// Addons are the contents of spec.addons, in spec order.
	Addons [][]byte
	// Pins are install.checksumsFile's SHA-256 pins (nil without one).
	Pins pins.Table
	// VRRPPassword is keepalived's auth_pass (VRRP PASS uses at most 8 characters). It is a secret
	// kept in the state directory so every run renders the same file (NewVRRPPassword makes one).
	VRRPPassword string
	// CloudCredentials are the values of spec.cloudProvider.credentialsEnv: Secret key -> value.
	CloudCredentials map[string]string
	// HashKey keys the config-hash annotations of pods whose configuration holds secrets, so the
	// annotation rolls the pods when a secret changes without letting anyone test guesses against
	// it. Without a key those hashes cover only the non-secret parts.
	HashKey []byte
}

// MaxVRRPPasswordLength is what keepalived uses of a PASS authentication password.
const MaxVRRPPasswordLength = 8

// NewVRRPPassword returns a random 8-character password for keepalived.
func NewVRRPPassword() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, MaxVRRPPasswordLength)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate VRRP password: %w", err)
	}
	for i := range b {
		// 256 is not a multiple of 62; the bias is irrelevant for a VRRP password.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

func (in Inputs) file(path string) ([]byte, error) {
	b, ok := in.Files[path]
	if !ok {
		return nil, fmt.Errorf("the content of %s was not loaded", path)
	}
	return b, nil
}

// configHash is the value of installer.dev/config-hash: SHA-256 of public configuration, plus an
// HMAC under Inputs.HashKey of the secret parts when a key is given.
func (in Inputs) configHash(public []byte, secret ...[]byte) string {
	h := sha256.New()
	h.Write(public)
	if len(in.HashKey) > 0 {
		m := hmac.New(sha256.New, in.HashKey)
		for _, s := range secret {
			fmt.Fprintf(m, "%d:", len(s))
			m.Write(s)
		}
		h.Write(m.Sum(nil))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ConfigHashAnnotation rolls a pod when its configuration changes.
const ConfigHashAnnotation = "installer.dev/config-hash"
