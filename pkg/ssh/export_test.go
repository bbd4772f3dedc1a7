package ssh

import "testing"

// SetSFTPCreatedHook calls f with the path of every file WriteFile creates
// through SFTP, right after SFTP OPEN and before its mode is set or any byte
// is written, until the test ends.
func SetSFTPCreatedHook(t testing.TB, f func(path string)) {
	t.Helper()
	sftpCreated = f
	t.Cleanup(func() { sftpCreated = nil })
}
