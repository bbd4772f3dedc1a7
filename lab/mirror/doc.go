// Package mirror is the lab's download server: one HTTP listener that serves the binary mirror
// (dl.k8s.io's /release/<v>/bin/linux/amd64/<cmd> layout and upstream GitHub release paths for CNI
// plugins, crictl and runc, each with its .sha256) and, under /v2/, an OCI registry holding every
// lab image under its upstream repository path (containerd reaches it through hosts.toml mirrors,
// so specs keep upstream image names). Images are pushed into the registry before it listens, so a
// host never sees a 404 and falls back upstream.
package mirror
