package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// UnmarshalJSON reads either form, refusing unknown fields in the object one.
func (a *Addon) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Addon{Manifest: s}
		return nil
	}
	type plain Addon
	var p plain
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return fmt.Errorf("an add-on is a path, or {manifest: PATH or https URL, sha256: HEX}: %w", err)
	}
	*a = Addon(p)
	return nil
}

// MarshalJSON writes the short form when there is no checksum.
func (a Addon) MarshalJSON() ([]byte, error) {
	if a.SHA256 == "" {
		return json.Marshal(a.Manifest)
	}
	type plain Addon
	return json.Marshal(plain(a))
}
