// Package ssh runs commands and moves files on remote hosts over SSH.
//
// Phases talk to hosts only through the small [Runner] interface: argv-shaped
// commands (never shell strings), optional stdin, sudo as a decorator, a
// "sensitive" mark that keeps a command and its data out of logs and errors,
// atomic file writes and TCP dials on the host's side of the connection.
//
// [Client] implements Runner on golang.org/x/crypto/ssh with key, agent and
// password authentication, an optional bastion (ProxyJump), host keys checked
// against known_hosts (no option turns that off), a cap on concurrent sessions
// per connection and one re-dial for idempotent operations. [Pool] keeps one
// Client per host for a whole run. Failures come back as typed errors
// ([AuthError], [HostKeyError], [UnreachableError], [ConnectionLostError],
// [SudoError], [CommandError], [CredentialsError]) so callers can retry only
// transient ones and map host-access failures to an exit code.
//
// Package sshtest holds an in-memory fake Runner for unit tests of phases and
// helpers that start a real OpenSSH server for integration tests.
package ssh
