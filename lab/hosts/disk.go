package hosts

import (
	"fmt"
	"path/filepath"
	"syscall"
)

// minFreeDisk is the share of the lab's disk that must stay free: the hosts' kubelets see the
// machine's file system, and evict pods when less than 15% of it is free (imagefs.available, their
// default hard eviction threshold). Evicted test workloads show up as failed Service requests.
const minFreeDisk = 0.20

// diskWarning says, when the file system holding dir (or its nearest existing parent) has less than
// minFreeDisk free, that the hosts' kubelets may evict pods; "" otherwise.
func diskWarning(dir string) (string, error) {
	for !exists(dir) && filepath.Dir(dir) != dir {
		dir = filepath.Dir(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "", fmt.Errorf("disk space of %s: %w", dir, err)
	}
	return lowDisk(st.Bavail, st.Blocks)
}

func lowDisk(avail, total uint64) (string, error) {
	if total == 0 {
		return "", nil
	}
	free := float64(avail) / float64(total)
	if free >= minFreeDisk {
		return "", nil
	}
	return fmt.Sprintf("WARNING: only %.0f%% of the disk holding the lab is free; the hosts' kubelets evict pods below 15%% (their image file system threshold), which fails workloads and tests at random. Free space first (go clean -cache, lab down of old labs)", free*100), nil
}
