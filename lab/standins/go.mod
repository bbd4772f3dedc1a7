// Stand-ins for components the lab cannot build from upstream modules (pause is C upstream) and
// small test tools. A module of its own so the installer's `go vet ./...` never reaches it; lab/build
// copies these sources into a wrapper module and builds them there.
module installer.dev/lab/standins

go 1.26
