package versions

import _ "embed"

//go:embed checksums.txt
var checksumTable []byte

// ChecksumTable is checksums.txt: the SHA-256 pinned for every file of the supported releases, in
// sha256sum's format (pkg/install parses it).
func ChecksumTable() []byte { return checksumTable }
