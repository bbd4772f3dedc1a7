// Package hack holds the repository's helper scripts; this test runs hack/lab-prereqs.sh against fake
// dpkg-query, apt-get, sudo and id commands (first on PATH), so the missing and install paths run for
// real without touching the machine's packages.
package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fakes log every call to $FAKE_LOG. $FAKE_MISSING is a file of package names dpkg-query does not
// know; the fake apt-get install removes its arguments from it (unless $FAKE_APT_BROKEN is set).
var fakes = map[string]string{
	"dpkg-query": `#!/usr/bin/env bash
echo "dpkg-query $*" >>"$FAKE_LOG"
# The script's one query; anything else is a change this fake must learn first.
[ "$1" = -W ] && [ "$2" = '-f=${Package} ${db:Status-Status}\n' ] || { echo "fake dpkg-query: unexpected arguments: $*" >&2; exit 2; }
shift 2
rc=0
for p; do
  if grep -qxF -- "$p" "$FAKE_MISSING"; then echo "dpkg-query: no packages found matching $p" >&2; rc=1; else echo "$p installed"; fi
done
exit $rc
`,
	"apt-get": `#!/usr/bin/env bash
echo "apt-get $*" >>"$FAKE_LOG"
if [ "$1" = install ] && [ -z "${FAKE_APT_BROKEN:-}" ]; then
  for p; do case "$p" in -*|install) ;; *) grep -vxF -- "$p" "$FAKE_MISSING" >"$FAKE_MISSING.new" || true; mv "$FAKE_MISSING.new" "$FAKE_MISSING" ;; esac; done
fi
`,
	// Runs only env ... apt-get (the fake, through PATH) and true; logs the rest (policy-rc.d) unrun.
	"sudo": `#!/usr/bin/env bash
echo "sudo $*" >>"$FAKE_LOG"
[ "$1" = -n ] || { echo "fake sudo: want -n: $*" >&2; exit 2; }
shift
case "$1" in
  true) exit "${FAKE_SUDO_RC:-0}" ;;
  env) exec "$@" ;;
esac
`,
	"id": `#!/usr/bin/env bash
[ "$1" = -u ] && echo "$FAKE_UID"
`,
}

type run struct {
	out  string // stdout and stderr
	code int
	log  []string // the fakes' calls
	took time.Duration
}

func runScript(t *testing.T, uid string, missing []string, env []string, args ...string) run {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	missingFile, logFile := filepath.Join(dir, "missing"), filepath.Join(dir, "log")
	if err := os.WriteFile(missingFile, []byte(strings.Join(missing, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("./lab-prereqs.sh", args...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAKE_UID="+uid,
		"FAKE_MISSING="+missingFile, "FAKE_LOG="+logFile)
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := run{out: string(out), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(logFile); err == nil {
		r.log = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	return r
}

func (r run) calls(prefix string) []string {
	var out []string
	for _, l := range r.log {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func needSSHD(t *testing.T) {
	t.Helper()
	// The script checks the machine's real sshd once the (fake) packages are in.
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("/usr/sbin/sshd not installed (make test installs openssh-server first)")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestCheckNothingMissing(t *testing.T) {
	needSSHD(t)
	r := runScript(t, "0", nil, nil, "check")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", r.code, r.out)
	}
	// One dpkg-query for the whole list, which holds what make lab and make test need.
	q := r.calls("dpkg-query")
	if len(q) != 1 {
		t.Fatalf("want one dpkg-query call, got %q", q)
	}
	for _, p := range []string{"mmdebstrap", "podman", "apt-cacher-ng", "openssh-server", "sudo", "shellcheck", "gcc", "busybox-static"} {
		if !strings.Contains(q[0]+" ", " "+p+" ") {
			t.Errorf("the package list lacks %s: %s", p, q[0])
		}
	}
	if len(r.log) != 1 {
		t.Errorf("check ran more than dpkg-query: %q", r.log)
	}
}

func TestCheckReportsMissing(t *testing.T) {
	for _, tc := range []struct{ uid, fix string }{
		{"0", "fix: " + mustAbs(t, "lab-prereqs.sh") + " install"},
		{"1000", "fix: sudo " + mustAbs(t, "lab-prereqs.sh") + " install"},
	} {
		r := runScript(t, tc.uid, []string{"mmdebstrap", "apt-cacher-ng"}, nil, "check")
		if r.code == 0 {
			t.Fatalf("uid %s: exit 0 with packages missing:\n%s", tc.uid, r.out)
		}
		if !strings.Contains(r.out, "missing apt packages: mmdebstrap apt-cacher-ng\n") {
			t.Errorf("uid %s: output does not name exactly the missing packages:\n%s", tc.uid, r.out)
		}
		if got := lastLine(r.out); got != tc.fix {
			t.Errorf("uid %s: last line %q, want %q", tc.uid, got, tc.fix)
		}
		if len(r.calls("apt-get")) != 0 || len(r.calls("sudo")) != 0 {
			t.Errorf("uid %s: check installed or updated something: %q", tc.uid, r.log)
		}
		if r.took > 5*time.Second {
			t.Errorf("uid %s: check took %v", tc.uid, r.took)
		}
	}
}

func TestNeedRoot(t *testing.T) {
	r := runScript(t, "1000", []string{"podman"}, nil, "install", "--need-root")
	if r.code == 0 || !strings.Contains(r.out, "not root (uid 1000)") || !strings.Contains(r.out, "missing apt packages: podman") {
		t.Fatalf("exit %d, want a failure naming root and podman:\n%s", r.code, r.out)
	}
	if len(r.calls("apt-get")) != 0 || len(r.calls("sudo")) != 0 {
		t.Errorf("installed something though make would fail anyway: %q", r.log)
	}
}

func TestInstallWithoutSudoPrintsTheCommand(t *testing.T) {
	r := runScript(t, "1000", []string{"podman"}, []string{"FAKE_SUDO_RC=1"}, "install")
	want := "run: sudo " + mustAbs(t, "lab-prereqs.sh") + " install"
	if r.code == 0 || !strings.HasSuffix(lastLine(r.out), want) {
		t.Fatalf("exit %d, want a failure ending in %q:\n%s", r.code, want, r.out)
	}
	if len(r.calls("apt-get")) != 0 {
		t.Errorf("ran apt-get without root: %q", r.log)
	}
}

func TestInstallThroughSudo(t *testing.T) {
	needSSHD(t)
	r := runScript(t, "1000", []string{"mmdebstrap", "apt-cacher-ng"}, nil, "install")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s\ncalls: %q", r.code, r.out, r.log)
	}
	apt := r.calls("apt-get")
	want := []string{"apt-get update -q", "apt-get install -y -q --no-install-recommends mmdebstrap apt-cacher-ng"}
	if strings.Join(apt, "\n") != strings.Join(want, "\n") {
		t.Errorf("apt-get calls %q, want %q", apt, want)
	}
	for _, c := range r.calls("sudo -n env") {
		if !strings.HasPrefix(c, "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get ") {
			t.Errorf("apt-get not run noninteractive through sudo -n: %q", c)
		}
	}
	// The temporary policy-rc.d: made before apt-get and removed at the end, unless the machine has one.
	var policy []string
	for _, c := range r.calls("sudo") {
		if strings.Contains(c, "/usr/sbin/policy-rc.d") {
			policy = append(policy, c)
		}
	}
	if _, err := os.Stat("/usr/sbin/policy-rc.d"); err == nil {
		if len(policy) != 0 {
			t.Errorf("touched the machine's own policy-rc.d: %q", policy)
		}
	} else {
		if len(policy) != 2 || !strings.Contains(policy[0], "exit 101") || policy[1] != "sudo -n rm -f /usr/sbin/policy-rc.d" {
			t.Errorf("policy-rc.d calls %q, want its creation (exit 101) and removal", policy)
		}
		if !slicesIndexBefore(r.log, policy[0], "apt-get install") || r.log[len(r.log)-1] != policy[1] {
			t.Errorf("policy-rc.d not in place around apt-get: %q", r.log)
		}
	}
	if !strings.Contains(r.out, "installed mmdebstrap apt-cacher-ng") {
		t.Errorf("output:\n%s", r.out)
	}
}

func TestInstallVerifies(t *testing.T) {
	r := runScript(t, "1000", []string{"podman"}, []string{"FAKE_APT_BROKEN=1"}, "install")
	if r.code == 0 || !strings.Contains(r.out, "apt package podman did not install") {
		t.Fatalf("exit %d, want a failure naming podman:\n%s", r.code, r.out)
	}
}

// TestCheckOnThisMachine runs the real check (real dpkg-query): whatever it finds, it answers fast.
func TestCheckOnThisMachine(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("not a Debian machine")
	}
	start := time.Now()
	out, err := exec.Command("./lab-prereqs.sh", "check").CombinedOutput()
	took := time.Since(start)
	if os.Getenv("CI") != "" && err != nil {
		t.Errorf("CI installs every prerequisite, yet: %v\n%s", err, out)
	}
	if took > 5*time.Second {
		t.Errorf("check took %v (it is one dpkg-query)", took)
	}
	t.Logf("check: %v, %s", took, strings.TrimSpace(string(out)))
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func slicesIndexBefore(log []string, first, laterPrefix string) bool {
	seen := false
	for _, l := range log {
		if l == first {
			seen = true
		}
		if strings.HasPrefix(l, laterPrefix) {
			return seen
		}
	}
	return false
}
