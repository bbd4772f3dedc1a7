package hosts

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"installer.dev/installer/lab/internal/flock"
	"installer.dev/installer/lab/podman"
	"installer.dev/installer/lab/rootfs"
)

// User is the non-root sudo user every host has; it logs in with the lab key only.
const User = "lab"

//go:embed image
var imageFiles embed.FS

type placedFile struct {
	src, dst string
	mode     os.FileMode
}

// imageLayout places the embedded files in the host's tree: name in image/ → path and mode.
func imageLayout() []placedFile {
	return []placedFile{
		{"lab-init", "usr/local/sbin/lab-init", 0o755},
		{"make-rshared.service", "etc/systemd/system/make-rshared.service", 0o644},
		{"lab-netns-sysctl.service", "etc/systemd/system/lab-netns-sysctl.service", 0o644},
		{"ssh-hostkeys.conf", "etc/systemd/system/ssh.service.d/hostkeys.conf", 0o644},
		{"sshd-lab.conf", "etc/ssh/sshd_config.d/lab.conf", 0o644},
	}
}

// chrootSteps run inside the unpacked tree, in order.
func chrootSteps() [][]string {
	return [][]string{
		{"systemctl", "enable", "make-rshared.service", "lab-netns-sysctl.service", "ssh.service"},
		{"systemctl", "set-default", "multi-user.target"},
		// systemd-sysctl would apply Debian's kernel-global defaults (pid_max, protected_*) to the machine.
		{"systemctl", "mask", "getty.target", "console-getty.service", "systemd-firstboot.service",
			"systemd-sysctl.service"},
		// Keep apt's lock free for the installer under test.
		{"systemctl", "disable", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
			"fstrim.timer", "e2scrub_reap.service"},
		{"useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", User},
	}
}

const imageRepo = "localhost/installer-lab-host"

// imageFormat changes whenever the customisation below changes in a way the hashed inputs do not show.
const imageFormat = "2"

// imageKey names the customised image: the root filesystem plus everything this file adds to it.
func imageKey(base rootfs.Tarball) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "format=%s\nrootfs=%s\nuser=%s\n", imageFormat, base.Key, User)
	for _, f := range imageLayout() {
		data, err := imageFiles.ReadFile("image/" + f.src)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %o %x\n", f.dst, f.mode, sha256.Sum256(data))
	}
	for _, s := range chrootSteps() {
		fmt.Fprintf(h, "%q\n", s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// EnsureImage makes sure the host image is in the lab's podman store, building the root filesystem
// and the customised tarball (both cached in cacheDir) when missing. It returns the image reference.
func EnsureImage(ctx context.Context, pm *podman.Podman, cacheDir string) (string, error) {
	base, err := rootfs.Ensure(ctx, cacheDir)
	if err != nil {
		return "", err
	}
	key, err := imageKey(base)
	if err != nil {
		return "", fmt.Errorf("host image key: %w", err)
	}
	ref := imageRepo + ":" + key
	if pm.ImageExists(ctx, ref) {
		return ref, nil
	}
	tarball, err := ensureHostTarball(ctx, cacheDir, key, base.Path)
	if err != nil {
		return "", err
	}
	if _, err := pm.Run(ctx, "import",
		"--change", `CMD ["/usr/local/sbin/lab-init"]`,
		"--change", "ENV container=podman",
		"--change", "STOPSIGNAL SIGRTMIN+3",
		tarball, ref); err != nil {
		return "", fmt.Errorf("import host image: %w", err)
	}
	removeOldImages(ctx, pm, ref)
	return ref, nil
}

// removeOldImages drops host images of earlier inputs from the lab's store (best effort: an image a
// container still uses stays).
func removeOldImages(ctx context.Context, pm *podman.Podman, keep string) {
	out, err := pm.Run(ctx, "images", "--format", "{{.Repository}}:{{.Tag}}", imageRepo)
	if err != nil {
		return
	}
	for _, ref := range strings.Fields(out) {
		if ref != keep {
			_, _ = pm.Run(ctx, "rmi", ref)
		}
	}
}

func ensureHostTarball(ctx context.Context, cacheDir, key, rootfsTar string) (string, error) {
	dir := filepath.Join(cacheDir, "host-image", key)
	out := filepath.Join(dir, "host.tar")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	lock, err := flock.Acquire(ctx, filepath.Join(cacheDir, "host-image", key+".lock"))
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tree := filepath.Join(dir, "tree")
	if err := os.RemoveAll(tree); err != nil {
		return "", fmt.Errorf("host image: %w", err)
	}
	defer os.RemoveAll(tree)
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return "", fmt.Errorf("host image: %w", err)
	}
	if err := run(ctx, "tar", append([]string{"-C", tree, "-xf", rootfsTar}, tarFlags()...)...); err != nil {
		return "", fmt.Errorf("unpack root filesystem: %w", err)
	}
	if err := customise(ctx, tree); err != nil {
		return "", fmt.Errorf("customise host image: %w", err)
	}
	tmp := out + ".partial"
	if err := run(ctx, "tar", append([]string{"-C", tree, "-cf", tmp}, append(tarFlags(), ".")...)...); err != nil {
		return "", fmt.Errorf("pack host image: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("host image: %w", err)
	}
	return out, nil
}

func customise(ctx context.Context, tree string) error {
	// Host keys would be shared by every host: each generates its own at first boot instead.
	keys, _ := filepath.Glob(filepath.Join(tree, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	// mmdebstrap copied this machine's resolver; podman writes the lab's (--dns) at start.
	if err := os.Remove(filepath.Join(tree, "etc/resolv.conf")); err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, f := range imageLayout() {
		data, err := fs.ReadFile(imageFiles, "image/"+f.src)
		if err != nil {
			return err
		}
		dst := filepath.Join(tree, f.dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(dst, f.mode); err != nil {
			return err
		}
	}
	for _, step := range chrootSteps() {
		if err := run(ctx, "chroot", append([]string{tree}, step...)...); err != nil {
			return err
		}
	}
	sudoers := filepath.Join(tree, "etc/sudoers.d", User)
	if err := os.WriteFile(sudoers, []byte(User+" ALL=(ALL) NOPASSWD:ALL\n"), 0o440); err != nil {
		return err
	}
	// ~/.ssh exists so the key can be bound in at authorized_keys; sshd's StrictModes wants 0700.
	sshDir := filepath.Join(tree, "home", User, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return err
	}
	return run(ctx, "chroot", tree, "chown", User+":"+User, "/home/"+User+"/.ssh")
}

// tarFlags keep owners numeric and file capabilities (ping's cap_net_raw lives in an xattr).
func tarFlags() []string {
	return []string{"--numeric-owner", "--xattrs", "--xattrs-include=*"}
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
