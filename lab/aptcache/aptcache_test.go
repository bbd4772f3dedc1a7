package aptcache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	c := Config{Dir: dir, CacheDir: "/cache", Address: "172.30.0.1"}
	if err := writeConfig(c, conf, "http://mirror.test/debian", "http://mirror.test/debian-security"); err != nil {
		t.Fatal(err)
	}
	acng, err := os.ReadFile(filepath.Join(conf, "acng.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"BindAddress: 172.30.0.1\n", "Port: 3142\n", "CacheDir: /cache\n",
		"PidFile: " + filepath.Join(dir, "pid") + "\n",
		"Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian\n",
		"; http://mirror.test/debian-security\n",
		"AllowUserPorts: 80 5000\n", // the lab's apt repositories
	} {
		if !strings.Contains(string(acng), want) {
			t.Errorf("acng.conf lacks %q:\n%s", want, acng)
		}
	}
	if strings.Contains(string(acng), "ForeGround") {
		t.Error("acng.conf must let apt-cacher-ng daemonise (Stop relies on its PID file)")
	}
	backends, err := os.ReadFile(filepath.Join(conf, "backends_debian"))
	if err != nil || string(backends) != "http://mirror.test/debian/\n" {
		t.Errorf("backends_debian = %q, %v", backends, err)
	}
}
