package state

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"installer.dev/installer/pkg/pki"
)

// Local is what the state directory holds of one cluster, its PKI and generated secrets, plus what a
// run generated in memory because the directory lacked it. Nothing is written until Save, which a
// command calls only once it has proven that the cluster on the hosts is this one, or that there is
// none yet (a new PKI must never meet a running cluster).
type Local struct {
	Dir Dir
	// PKI is the directory's PKI, the one generated in memory (PKIGenerated), or nil.
	PKI          *pki.Bundle
	PKIGenerated bool

	secrets   map[string]string
	generated []string // secret names not in the directory yet
}

// LoadLocal reads the state directory's PKI; without one it generates a PKI in memory when
// generatePKI is set (create cluster, plan) and leaves PKI nil otherwise.
func LoadLocal(dir Dir, generatePKI bool) (*Local, error) {
	l := &Local{Dir: dir, secrets: map[string]string{}}
	b, err := pki.Load(dir.PKI())
	switch {
	case err == nil:
		l.PKI = b
	case !errors.Is(err, pki.ErrNoPKI):
		return nil, err
	case generatePKI:
		if l.PKI, err = pki.Generate(pki.Options{}); err != nil {
			return nil, err
		}
		l.PKIGenerated = true
	}
	return l, nil
}

// Secret returns the generated secret <dir>/secrets/<name>; when the directory lacks it, generate
// makes one in memory that Save writes later. Keeping it makes every later run render identical
// files (keepalived's VRRP password).
func (l *Local) Secret(name string, generate func() (string, error)) (string, error) {
	if v, ok := l.secrets[name]; ok {
		return v, nil
	}
	if v, ok, err := l.Stored(name); err != nil || ok {
		if ok {
			l.secrets[name] = v
		}
		return v, err
	}
	v, err := generate()
	if err != nil {
		return "", err
	}
	l.secrets[name] = v
	l.generated = append(l.generated, name)
	return v, nil
}

// ErrSecretDiffers: a stored secret is not the one recovered from the hosts.
var ErrSecretDiffers = errors.New("differs from the hosts' value")

// Stored returns the secret <dir>/secrets/<name> when the directory holds it, without generating one.
func (l *Local) Stored(name string) (string, bool, error) {
	data, err := os.ReadFile(l.Dir.Secret(name))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read secret: %w", err)
	}
	v := strings.TrimSpace(string(data))
	if v == "" {
		return "", false, fmt.Errorf("secret %s is empty; delete it to generate a new one", l.Dir.Secret(name))
	}
	return v, true, nil
}

// Adopt takes a secret recovered from the hosts (state recover): Save writes it when the directory
// lacks it, in place of anything generated in memory. It reports whether it is new; a stored secret
// that differs is an error, never replaced.
func (l *Local) Adopt(name, value string) (bool, error) {
	stored, ok, err := l.Stored(name)
	if err != nil {
		return false, err
	}
	if ok {
		if stored != value {
			return false, fmt.Errorf("%s %w", l.Dir.Secret(name), ErrSecretDiffers)
		}
		l.secrets[name] = stored
		return false, nil
	}
	l.secrets[name] = value
	if !slices.Contains(l.generated, name) {
		l.generated = append(l.generated, name)
	}
	return true, nil
}

// Pending lists the paths Save would write (nothing when everything was loaded).
func (l *Local) Pending() []string {
	var out []string
	if l.PKIGenerated {
		out = append(out, l.Dir.PKI()+"/")
	}
	for _, name := range l.generated {
		out = append(out, l.Dir.Secret(name))
	}
	return out
}

// Save writes what was generated: the PKI as a whole (pki.Bundle.Save) and each secret 0600 from
// its first byte. It never replaces a file; a secret another run wrote meanwhile is an error.
func (l *Local) Save() error {
	if l.PKIGenerated {
		if err := l.PKI.Save(l.Dir.PKI()); err != nil {
			return err
		}
		l.PKIGenerated = false
	}
	if len(l.generated) == 0 {
		return nil
	}
	if err := os.MkdirAll(l.Dir.Secrets(), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	for len(l.generated) > 0 {
		name := l.generated[0]
		// O_EXCL: never replace a secret another run wrote (the run lock should prevent that anyway).
		f, err := os.OpenFile(l.Dir.Secret(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("write secret: %w", err)
		}
		if _, err := f.WriteString(l.secrets[name] + "\n"); err != nil {
			f.Close()
			return fmt.Errorf("write secret: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write secret: %w", err)
		}
		l.generated = slices.Delete(l.generated, 0, 1)
	}
	return nil
}
