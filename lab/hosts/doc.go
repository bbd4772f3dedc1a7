// Package hosts is the lab's fleet of Linux "servers": rootful podman containers running systemd and
// sshd on two internal networks, built from the cached Debian root filesystem. It brings a topology up,
// writes the cluster spec for it, offers fault controls (stop, start, kill, cut, heal) and tears
// everything down again, leaving the machine as it found it. e2e tests and the lab CLI call it.
package hosts
