package simhost

import _ "embed"

// RepositoryKey is the signing key the simulated package repository serves (a real OpenPGP key,
// made for these tests only); RepositoryKeyFingerprint is its fingerprint.
//
//go:embed repository-key.asc
var RepositoryKey []byte

const RepositoryKeyFingerprint = "A2C2E4FAC3BE86F6F8EEAE066906F43D3930F88E"

// OtherKey is a key of nobody the specs pin (a repository serving the wrong key).
//
//go:embed other-key.asc
var OtherKey []byte

// ServeRepositoryKey makes the simulated repository serve key instead of RepositoryKey.
func (h *Host) ServeRepositoryKey(key []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.servedKey = key
}

// fetchKey is fetch-key.sh URL PROXY: the key the repository serves, printed.
func (h *Host) fetchKey([]string) Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.servedKey != nil {
		return Out(string(h.servedKey))
	}
	return Out(string(RepositoryKey))
}
