package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Secret returns the generated secret <dir>/secrets/<name>, creating it with generate on first use
// (0600). Keeping it makes every later run render identical files (keepalived's VRRP password).
func Secret(dir, name string, generate func() (string, error)) (string, error) {
	if err := Ensure(dir); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "secrets", name)
	data, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(data)); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("secret %s is empty; delete it to generate a new one", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read secret: %w", err)
	}
	v, err := generate()
	if err != nil {
		return "", err
	}
	// O_EXCL: two runs can never both create it (the run lock should prevent that anyway).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("write secret: %w", err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write secret: %w", err)
	}
	return v, f.Close()
}
