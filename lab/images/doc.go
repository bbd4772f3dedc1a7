// Package images builds the lab's container images with go-containerregistry: single-layer OCI
// images whose layer tars are written here (explicit modes, fixed times, sorted entries, so builds
// are reproducible) from lab/build's binaries and userland copied out of the shared Debian root
// filesystem (binaries with the libraries their ELF headers need). Images land in one OCI layout in
// the lab cache; lab/mirror serves them.
package images
