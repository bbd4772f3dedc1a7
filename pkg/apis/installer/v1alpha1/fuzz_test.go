package v1alpha1

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadValidate feeds arbitrary documents through the offline pipeline. It must never panic, and
// every problem it reports must name the field it is about. The seed corpus (configs/ and
// testdata/) runs with every plain `go test`; `go test -fuzz FuzzLoadValidate` explores further.
func FuzzLoadValidate(f *testing.F) {
	for _, pattern := range []string{"../../../../configs/*.yaml", "testdata/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Load(data)
		if err != nil {
			var de *DecodeError
			if errors.As(err, &de) {
				for _, fe := range de.Errors {
					if fe.Field == "" {
						t.Fatalf("decode error without a field path: %v", fe)
					}
				}
			}
			return
		}
		c.Default()
		errs, warns := Validate(c)
		for _, fe := range errs {
			if fe.Field == "" || fe.Field == "<nil>" {
				t.Fatalf("validation error without a field path: %v", fe)
			}
		}
		for _, w := range warns {
			if w.Field == "" {
				t.Fatalf("warning without a field path: %v", w)
			}
		}
	})
}
