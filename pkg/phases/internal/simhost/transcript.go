package simhost

import (
	"fmt"
	"strings"

	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// Failure is a failure injected at a step: the first command whose transcript line is the step, or
// starts with it followed by a space, fails once.
type Failure struct {
	step   string
	code   int
	stderr string
	lost   bool
	done   bool
}

// FailAt makes the first command at step exit 1 with "injected failure". A step is a command as
// the transcript shows it, or its leading words: "kubeadm init", "apt.sh", "etcd.sh snapshot",
// "download.sh binary http://mirror:8080/release/v1.34.10/bin/linux/amd64/kubelet".
func (h *Host) FailAt(step string) *Failure {
	f := &Failure{step: step, code: 1, stderr: "injected failure"}
	h.hmu.Lock()
	defer h.hmu.Unlock()
	h.failures = append(h.failures, f)
	return f
}

// Exit makes the failure exit with code and stderr.
func (f *Failure) Exit(code int, stderr string) *Failure {
	f.code, f.stderr = code, stderr
	return f
}

// Lose makes the connection drop at the step instead (the command's answer never comes).
func (f *Failure) Lose() *Failure {
	f.lost = true
	return f
}

func (h *Host) dueFailure(line string) *Failure {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	for _, f := range h.failures {
		if !f.done && (line == f.step || strings.HasPrefix(line, f.step+" ")) {
			f.done = true
			return f
		}
	}
	return nil
}

// Line is a command as transcripts show it: one of pkg/scripts' scripts by its name and quoted
// arguments, any other command as its quoted argv.
func Line(cmd ssh.Cmd) string {
	if s, args, ok := scripts.Parse(cmd.Args); ok {
		return strings.TrimSpace(s.Name + " " + ssh.Quote(args))
	}
	return ssh.Quote(cmd.Args)
}

// CallLine is one call as transcripts show it: a command's Line, "write PATH MODE sensitive=BOOL",
// "read PATH" or "dial ADDRESS".
func CallLine(c sshtest.Call) string {
	switch c.Op {
	case "run":
		return Line(c.Cmd)
	case "write":
		return fmt.Sprintf("write %s %04o sensitive=%v", c.Path, c.File.Mode, c.File.Sensitive)
	case "dial":
		return "dial " + c.Addr
	}
	return c.Op + " " + c.Path
}

// Mark is where the host's transcript is now; Transcript(mark) is what happened since.
func (h *Host) Mark() int { return len(h.Calls()) }

// Transcript is every call since mark, one CallLine each.
func (h *Host) Transcript(mark int) []string {
	var out []string
	for _, c := range h.Calls()[mark:] {
		out = append(out, CallLine(c))
	}
	return out
}

// Commands is the Line of every command run since mark (no reads, writes or dials).
func (h *Host) Commands(mark int) []string {
	var out []string
	for _, c := range h.Calls()[mark:] {
		if c.Op == "run" {
			out = append(out, Line(c.Cmd))
		}
	}
	return out
}
