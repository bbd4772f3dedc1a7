package images

import "fmt"

// usrMerge adds Debian's merged-/usr links, so absolute paths such as /bin/sh or the loader's
// /lib64/ld-linux-x86-64.so.2 resolve inside images the way they do on the hosts.
func usrMerge(s *fileSet) {
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		s.symlink("/"+d, "usr/"+d)
	}
}

// addIPTables adds what kube-proxy and flanneld exec: iptables-nft (all the names kube-proxy and
// go-iptables call), nft and conntrack, with the libraries of the binaries and of every xtables
// extension. libm is dlopen'ed by two extensions, so ldd of the binaries misses it; without it the
// statistic match fails and Services with two or more endpoints time out.
func (t *tree) addIPTables(s *fileSet) error {
	seen := map[string]bool{}
	for _, b := range []string{"/usr/sbin/xtables-nft-multi", "/usr/sbin/nft", "/usr/sbin/conntrack",
		"/usr/lib/x86_64-linux-gnu/libm.so.6"} {
		if err := t.addELF(s, b, seen); err != nil {
			return err
		}
	}
	for _, n := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
		"ip6tables-restore", "iptables-nft", "iptables-nft-save", "iptables-nft-restore", "ip6tables-nft",
		"ip6tables-nft-save", "ip6tables-nft-restore"} {
		if _, err := t.add(s, "/usr/sbin/"+n); err != nil {
			return err
		}
	}
	exts, err := t.glob("/usr/lib/x86_64-linux-gnu/xtables/*.so")
	if err != nil {
		return err
	}
	if len(exts) == 0 {
		return fmt.Errorf("rootfs: no xtables extensions found")
	}
	for _, e := range exts {
		if err := t.addELF(s, e, seen); err != nil {
			return err
		}
	}
	for _, f := range []string{"/etc/protocols", "/etc/services", "/etc/ethertypes"} {
		if _, err := t.add(s, f); err != nil {
			return err
		}
	}
	s.content("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\nprotocols: files\nservices: files\nethers: files\n", 0o644)
	s.dir("/run", 0o755)
	s.dir("/tmp", 0o1777)
	return nil
}

// busyboxApplets are the commands images get from Debian's static busybox (cp for the CNI install
// init containers, sh for scripts, network probes for tests).
var busyboxApplets = []string{
	"sh", "ash", "cp", "mv", "rm", "ln", "ls", "cat", "mkdir", "echo", "sleep", "test", "[", "grep", "sed",
	"env", "true", "false", "chmod", "ps", "kill", "id", "hostname", "ping", "nslookup", "wget", "ip",
	"nc", "head", "tail", "wc", "date", "uname", "mount", "df", "find", "tee", "touch", "awk", "sort",
}

// addBusybox adds /usr/bin/busybox and its applets, leaving real binaries of the same name alone.
func (t *tree) addBusybox(s *fileSet) error {
	if _, err := t.add(s, "/usr/bin/busybox"); err != nil {
		return err
	}
	for _, a := range busyboxApplets {
		p := "/usr/bin/" + a
		if _, ok := s.entries[p]; !ok {
			s.symlink(p, "busybox")
		}
	}
	return nil
}

// etcUsers writes minimal account files; daemons look up their users by name.
func etcUsers(s *fileSet, users ...string) {
	passwd := "root:x:0:0:root:/root:/bin/sh\n"
	group := "root:x:0:\n"
	for i, u := range users {
		id := 100 + i
		passwd += fmt.Sprintf("%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", u, id, id)
		group += fmt.Sprintf("%s:x:%d:\n", u, id)
	}
	passwd += "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	group += "nogroup:x:65534:\n"
	s.content("/etc/passwd", passwd, 0o644)
	s.content("/etc/group", group, 0o644)
	if _, ok := s.entries["/etc/nsswitch.conf"]; !ok {
		s.content("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n", 0o644)
	}
}
