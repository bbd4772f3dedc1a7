// goreleaser is pinned in its own module: its dependency tree is large and must not change the
// versions the installer itself builds with. v2.17.0 is the newest release whose go.mod accepts the
// Go 1.26 this project builds with (v2.18 needs Go 1.27). Used by `make release-check`.
module installer.dev/installer/hack/tools/goreleaser

go 1.26.4
