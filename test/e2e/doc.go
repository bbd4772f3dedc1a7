// Package e2e holds the installer's end-to-end checks against the offline lab. They build with
// `-tags e2e` and run with `make e2e`; without the tag this package is empty.
package e2e
