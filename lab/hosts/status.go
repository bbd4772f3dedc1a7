package hosts

import (
	"context"
	"fmt"
	"os/exec"
)

// HostStatus is what Status reports for one host.
type HostStatus struct {
	Host
	State string // podman's: running, exited, …; "missing" when the container is gone
	Cut   bool
}

// Status reports every host of the running lab.
func (l *Lab) Status(ctx context.Context) (*State, []HostStatus, error) {
	st, err := l.LoadState()
	if err != nil {
		return nil, nil, err
	}
	var out []HostStatus
	for _, h := range st.Hosts {
		s, err := l.pm.State(ctx, h.Name)
		if err != nil {
			s = "missing"
		}
		_, cut := st.Cut[h.Name]
		out = append(out, HostStatus{Host: h, State: s, Cut: cut})
	}
	return st, out, nil
}

// SSHCommand returns the system OpenSSH client logged in to a host as the lab user, verifying the
// host key against the lab's known_hosts (never an insecure mode). With no argv it is interactive.
func (l *Lab) SSHCommand(ctx context.Context, name string, argv ...string) (*exec.Cmd, error) {
	st, err := l.LoadState()
	if err != nil {
		return nil, err
	}
	h, err := st.Host(name)
	if err != nil {
		return nil, err
	}
	args := append(l.SSHOptions(), fmt.Sprintf("%s@%s", User, h.Address))
	if len(argv) > 0 {
		args = append(args, "--")
		args = append(args, argv...)
	}
	return exec.CommandContext(ctx, "ssh", args...), nil
}

// SSHOptions are the OpenSSH client options every lab login uses.
func (l *Lab) SSHOptions() []string {
	return []string{
		"-F", "/dev/null", // the user's own ssh config must not change what is tested
		"-i", l.KeyFile(),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + l.KnownHostsFile(),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=5",
		"-o", "LogLevel=ERROR",
	}
}
