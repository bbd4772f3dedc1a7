// Package buildinfo holds what `make build` stamps into the binary with -ldflags -X; the values are
// read-only after link time.
package buildinfo

import (
	"fmt"
	"runtime"
)

// Set by the linker: -X installer.dev/installer/pkg/buildinfo.Version=... (see Makefile and
// .goreleaser.yaml, which must use the same flags).
var (
	Version = "dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// Info is a snapshot of the build stamp.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns the build stamp of this binary.
func Get() Info {
	return Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version(),
		Platform: fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH)}
}
