// Package sshtest helps test code that uses package ssh: Fake is an
// in-memory ssh.Runner with scripted command responses for unit tests of
// phases, and StartServer, NewUser, NewKey and StartAgent run a real OpenSSH
// server, throw-away users and an ssh-agent for integration tests.
//
// The server helpers need root (they create users and sudoers entries and
// run /usr/sbin/sshd with privilege separation) and Debian's openssh-server,
// openssh-client and sudo packages. They fail the test with the reason when
// something is missing; they never skip.
package sshtest
