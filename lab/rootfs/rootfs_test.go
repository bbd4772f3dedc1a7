package rootfs

import (
	"reflect"
	"testing"
)

func TestPackageSet(t *testing.T) {
	got := packageSet([]string{"haproxy", " ", "sudo", "busybox"})
	if got[0] != "busybox" || !contains(got, "haproxy") || !contains(got, "openssh-server") {
		t.Fatalf("packageSet = %v", got)
	}
	n := 0
	for _, p := range got {
		if p == "sudo" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("sudo listed %d times in %v", n, got)
	}
	if !reflect.DeepEqual(packageSet(nil), packageSet([]string{"sudo"})) {
		t.Fatal("an extra that is already a base package changed the set")
	}
}

func TestCacheKey(t *testing.T) {
	m := []string{"deb http://m/debian bookworm main"}
	a := cacheKey(packageSet(nil), m)
	if a != cacheKey(packageSet(nil), m) {
		t.Fatal("key not stable")
	}
	if a == cacheKey(packageSet([]string{"haproxy"}), m) {
		t.Fatal("extra package did not change the key")
	}
	if a == cacheKey(packageSet(nil), []string{"deb http://other/debian bookworm main"}) {
		t.Fatal("mirror did not change the key")
	}
}

func TestBasePackagesIsACopy(t *testing.T) {
	b := BasePackages()
	b[0] = "changed"
	if BasePackages()[0] == "changed" {
		t.Fatal("BasePackages returned shared state")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
