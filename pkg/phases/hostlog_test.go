package phases

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// TestHostLogRedacts: the per-host log file hides what the terminal hides — bootstrap tokens,
// private keys and the command's secrets — in both output streams (security review, low).
func TestHostLogRedacts(t *testing.T) {
	f := sshtest.NewFake("cp1")
	out := "token abcdef.0123456789abcdef\n-----BEGIN RSA PRIVATE KEY-----\nMIIEkeybody\n-----END RSA PRIVATE KEY-----\nvrrp-s3cret\n"
	f.On(sshtest.Prefix("show")).Do(func(ssh.Cmd) (ssh.Result, error) {
		return ssh.Result{Stdout: []byte(out), Stderr: []byte("stderr vrrp-s3cret abcdef.0123456789abcdef\n")}, nil
	})
	h := &Host{Spec: v1alpha1.Host{Name: "cp1"}}
	h.SetConnection(f)
	var log bytes.Buffer
	h.SetLog(&log)
	if _, err := h.Query(context.Background(), ssh.Cmd{Args: []string{"show", "secrets"}, Secrets: []string{"vrrp-s3cret"}}); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"abcdef.0123456789abcdef", "MIIEkeybody", "vrrp-s3cret"} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("host log shows %q:\n%s", secret, log.String())
		}
	}
	if !strings.Contains(log.String(), "token <redacted>") {
		t.Errorf("host log lost the rest of the line:\n%s", log.String())
	}
}
