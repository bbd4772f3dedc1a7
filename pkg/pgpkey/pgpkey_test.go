package pgpkey

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// The keys in testdata are test-only Ed25519 keys (one.asc: A2C2 E4FA ...; two.asc: it and another).
const oneFingerprint = "A2C2E4FAC3BE86F6F8EEAE066906F43D3930F88E"

func TestFingerprint(t *testing.T) {
	armored, err := os.ReadFile("testdata/one.asc")
	if err != nil {
		t.Fatal(err)
	}
	if fp, err := Fingerprint(armored); err != nil || fp != oneFingerprint {
		t.Fatalf("armored: %q, %v; want %s", fp, err, oneFingerprint)
	}
	if fp, err := Fingerprint(dearmor(t, armored)); err != nil || fp != oneFingerprint {
		t.Fatalf("binary: %q, %v; want %s", fp, err, oneFingerprint)
	}

	two, err := os.ReadFile("testdata/two.asc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Fingerprint(two); err == nil || !strings.Contains(err.Error(), "2 armored key blocks") {
		t.Errorf("two armored keys: %v, want a refusal", err)
	}
	// Both keys in one binary key ring.
	other, _ := strings.CutPrefix(string(two), string(armored))
	binaryOther := dearmor(t, []byte(other))
	if _, err := Fingerprint(append(dearmor(t, armored), binaryOther...)); err == nil || !strings.Contains(err.Error(), "2 keys in one file") || !strings.Contains(err.Error(), oneFingerprint) {
		t.Errorf("two binary keys: %v, want a refusal naming both", err)
	}
	for _, bad := range []string{"", "hello", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"} {
		if fp, err := Fingerprint([]byte(bad)); err == nil {
			t.Errorf("%q: fingerprint %s, want an error", bad, fp)
		}
	}
}

func dearmor(t *testing.T, armored []byte) []byte {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatal(err)
	}
	var binary bytes.Buffer
	if _, err := binary.ReadFrom(block.Body); err != nil {
		t.Fatal(err)
	}
	return binary.Bytes()
}

func TestNormalizeValid(t *testing.T) {
	for in, want := range map[string]bool{
		"DE15 B144 86CD 377B 9E87  6E1A 2346 54DA 9A29 6436": true,
		"de15b14486cd377b9e876e1a234654da9a296436":           true,
		strings.Repeat("ab", 32):                             true, // v6
		"DE15B14486CD377B9E876E1A234654DA9A29643":            false,
		"XE15B14486CD377B9E876E1A234654DA9A296436":           false,
		"": false,
	} {
		if got := Valid(Normalize(in)); got != want {
			t.Errorf("Valid(Normalize(%q)) = %v, want %v", in, got, want)
		}
	}
	if got := Normalize("de15 b144"); got != "DE15B144" {
		t.Errorf("Normalize = %q", got)
	}
}
