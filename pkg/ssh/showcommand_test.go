package ssh

import "testing"

// TestShowCommand: logs and errors show a script by its name and arguments, never its body, and
// redact secrets either way.
func TestShowCommand(t *testing.T) {
	for _, tc := range []struct {
		cmd  Cmd
		want string
	}{
		{Cmd{Args: []string{"sh", "-c", "set -eu\nkind=$1\n", "download.sh", "binary", "http://m/runc.amd64", ""}}, "download.sh binary http://m/runc.amd64 ''"},
		{Cmd{Args: []string{"sh", "-c", "echo one line", "x"}}, "sh -c 'echo one line' x"},
		{Cmd{Args: []string{"kubeadm", "join", "--token", "abcdef.0123456789abcdef"}, Secrets: []string{"abcdef.0123456789abcdef"}}, "kubeadm join --token <redacted>"},
		{Cmd{Args: []string{"sh", "-c", "a\nb", "s.sh", "tok"}, Secrets: []string{"tok"}}, "s.sh <redacted>"},
		{Cmd{Args: []string{"cat"}, Sensitive: true}, "<sensitive>"},
	} {
		if got := ShowCommand(tc.cmd); got != tc.want {
			t.Errorf("ShowCommand(%q) = %q, want %q", tc.cmd.Args, got, tc.want)
		}
	}
}
