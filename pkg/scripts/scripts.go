// Package scripts holds every shell script the installer runs on hosts, one file each (*.sh in this
// directory, embedded into the binary). A script runs as `sh -c BODY NAME ARGS...` (Script.Args):
// NAME, the file's name, is its $0, so ps, the shell's own error messages and the host logs name it,
// and every value reaches it as a positional parameter. No value is ever pasted into a script's text;
// pkg/ssh quotes the argv.
//
// Each file starts with "#!/bin/sh" (the scripts are POSIX sh: Debian's dash runs them) and a
// comment saying what it does, its arguments and its output. That leading comment block is not sent
// to hosts: Body is the file from its first line of code on. Every script is checked by `sh -n` and
// shellcheck (this package's tests and `make lint`).
package scripts

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.sh
var files embed.FS

// Script is one embedded shell script.
type Script struct {
	// Name is the file's name ("reset-host.sh"), the script's $0 when it runs.
	Name string
	// Body is what `sh -c` runs: the file without its leading comment block.
	Body string
}

// Args is the argv that runs the script with args as its positional parameters ($1...).
func (s Script) Args(args ...string) []string {
	return append([]string{"sh", "-c", s.Body, s.Name}, args...)
}

// The scripts, by file name.
var (
	// Facts prints every fact of a host (pkg/facts).
	Facts = load("facts.sh")

	// Download installs a binary or unpacks an archive after checking its published SHA-256
	// (pkg/install).
	Download = load("download.sh")
	// BundleInstall installs a binary or unpacks an archive of the local bundle that arrives on
	// stdin, staged in a root-only directory and checked against its SHA-256 (pkg/install).
	BundleInstall = load("bundle-install.sh")
	// Apt runs apt-get non-interactively under deadlines, waiting for apt's locks (pkg/install).
	Apt = load("apt.sh")
	// DNF runs dnf or yum non-interactively (pkg/install).
	DNF = load("dnf.sh")

	// FileRead prints a file, or exits 66 when it is missing (pkg/ssh).
	FileRead = load("file-read.sh")
	// FileState prints a file's mode, owner, group and SHA-256, or "missing" (pkg/ssh, pkg/phases).
	FileState = load("file-state.sh")
	// FileStates prints the state of many files in one round trip (pkg/phases).
	FileStates = load("file-states.sh")
	// FileInstall puts a file in place atomically with its mode and owner (pkg/ssh).
	FileInstall = load("file-install.sh")
	// FileMeta sets a file's mode and owner (pkg/ssh).
	FileMeta = load("file-meta.sh")

	// The phases' (pkg/phases).

	// SwapOff turns swap off, now and in /etc/fstab.
	SwapOff = load("swap-off.sh")
	// MissingModules prints the kernel modules a node needs that are not there.
	MissingModules = load("missing-modules.sh")
	// UnitState prints whether a systemd unit is enabled and active.
	UnitState = load("unit-state.sh")
	// Installed prints crictl's version, the CNI plugins' version and the missing node prerequisites.
	Installed = load("installed.sh")
	// FetchKey prints a package repository's signing key, downloaded by the host.
	FetchKey = load("fetch-key.sh")
	// Etcd runs etcdctl in the local etcd pod: members, health, snapshots.
	Etcd = load("etcd.sh")
	// ManifestImages prints the image of each static pod manifest given.
	ManifestImages = load("manifest-images.sh")
	// Processes lists the running processes of given names.
	Processes = load("processes.sh")
	// KubeletPods prints the kubelet's start time and the ready sandboxes of the control plane's
	// static pods.
	KubeletPods = load("kubelet-pods.sh")
	// APILB reads and changes this control plane's part of the API's load balancer (keepalived's
	// maintenance marker, haproxy's runtime API).
	APILB = load("api-lb.sh")
	// Certs prints the certificates of certificate files and kubeconfigs, never their keys.
	Certs = load("certs.sh")
	// EtcdRestore is one control plane's steps of restoring etcd from a snapshot.
	EtcdRestore = load("etcd-restore.sh")
	// RestartStaticPod restarts static pods' containers and waits for their new ones.
	RestartStaticPod = load("restart-static-pod.sh")
	// HeldManifests lists or puts back the manifests an interrupted restart held aside.
	HeldManifests = load("held-manifests.sh")
	// RenderStaticPod replaces a control-plane static pod with the manifest kubeadm renders anew.
	RenderStaticPod = load("render-static-pod.sh")
	// APIServerCert issues a new apiserver serving certificate with kubeadm, the old one kept.
	APIServerCert = load("apiserver-cert.sh")
	// StaleMirrors lists or removes the registry mirror files the spec no longer has.
	StaleMirrors = load("stale-mirrors.sh")
	// ResetHost lists or removes what a cluster leaves on a host besides the firewall.
	ResetHost = load("reset-host.sh")
	// ResetFirewall lists or removes the firewall state of kube-proxy, the kubelet and the CNI.
	ResetFirewall = load("reset-firewall.sh")
)

// loaded are the scripts load returned, by name: every embedded file must be one (a test checks).
var loaded = map[string]Script{}

// load reads an embedded script; a missing file is a programming error caught by any test.
func load(name string) Script {
	data, err := files.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("scripts: %v", err))
	}
	s := Script{Name: name, Body: body(string(data))}
	loaded[name] = s
	return s
}

// body drops the leading comment block (the "#!" line, the description, shellcheck directives) and
// the blank lines around it.
func body(file string) string {
	rest := file
	for rest != "" {
		line, after, _ := strings.Cut(rest, "\n")
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		rest = after
	}
	return rest
}

// All returns every script, sorted by name.
func All() []Script {
	out := make([]Script, 0, len(loaded))
	for _, s := range loaded {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Parse recognises an argv made by Script.Args: it returns the script and its arguments, and false
// for any other argv (including `sh -c` with a body that is not the named script's).
func Parse(argv []string) (Script, []string, bool) {
	if len(argv) < 4 || argv[0] != "sh" || argv[1] != "-c" {
		return Script{}, nil, false
	}
	s, ok := loaded[argv[3]]
	if !ok || s.Body != argv[2] {
		return Script{}, nil, false
	}
	return s, argv[4:], true
}
