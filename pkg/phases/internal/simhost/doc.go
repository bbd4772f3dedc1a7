// Package simhost simulates the Debian hosts of a kubeadm cluster for pkg/phases' tests: one model
// of a host (packages and binaries with their versions, systemd units, files, kubeadm's state, what a
// node leaves behind) answering the commands the installer sends, and a cluster of such hosts (etcd's
// members, an optional fake cluster API). Create, join, upgrade and reset tests all run against it.
//
// A Host is an ssh.Runner built on sshtest.Fake: its files are the fake's files, and every command is
// answered by a handler registered per script name (pkg/scripts, matched by $0, never by the body)
// or per command (its leading words: "systemctl restart", "kubeadm init"). A command nobody handles
// fails with the fake's "no response scripted" error, so a new command in production code shows up
// as a test failure naming it.
//
// Only tests import this package (it is internal to pkg/phases; a test in this package checks that
// no non-test file does).
package simhost
