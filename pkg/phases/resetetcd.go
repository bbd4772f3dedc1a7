package phases

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// etcdMember is one line of `etcdctl member list -w simple` (etcd.sh member-list).
type etcdMember struct {
	ID, Status, Name     string
	PeerURLs, ClientURLs []string
}

var etcdMemberID = regexp.MustCompile(`^[0-9a-f]{1,16}$`)

// parseEtcdMembers reads "ID, status, name, peer URLs, client URLs, is learner" lines.
func parseEtcdMembers(out string) ([]etcdMember, error) {
	var members []etcdMember
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		f := strings.Split(l, ", ")
		if len(f) < 5 || !etcdMemberID.MatchString(f[0]) {
			return nil, fmt.Errorf("unexpected etcd member line %q", l)
		}
		members = append(members, etcdMember{ID: f[0], Status: f[1], Name: f[2], PeerURLs: strings.Split(f[3], ","), ClientURLs: strings.Split(f[4], ",")})
	}
	if len(members) == 0 {
		return nil, fmt.Errorf("etcd listed no members")
	}
	return members, nil
}

// memberOf returns the member that is host h: by name (kubeadm names members after their node) or
// by a peer URL on the host's private address (a member that never started has no name).
func memberOf(members []etcdMember, name, ip string) (etcdMember, bool) {
	for _, m := range members {
		if m.Name == name {
			return m, true
		}
		for _, p := range m.PeerURLs {
			if u, err := url.Parse(p); err == nil && u.Hostname() == ip {
				return m, true
			}
		}
	}
	return etcdMember{}, false
}

// removeEtcdMember checks, on a control plane that stays, that the reset control plane h has left
// etcd (kubeadm reset removes its member when etcd answers), and removes its member if not.
// What the check finds depends on kubeadm reset having run, so a dry run only plans it.
func removeEtcdMember(ctx context.Context, log *slog.Logger, survivor, h *Host) error {
	what := fmt.Sprintf("check etcd's members on %s; remove %s's if kubeadm reset left it", survivor.Name(), h.Name())
	return survivor.fx.Then(ctx, h, what, func(ctx context.Context) error {
		return removeLeftMember(ctx, log, survivor, h)
	})
}

func removeLeftMember(ctx context.Context, log *slog.Logger, survivor, h *Host) error {
	res, err := survivor.Query(ctx, ssh.Cmd{Args: scripts.Etcd.Args("member-list")})
	if err != nil {
		return fmt.Errorf("list etcd members on %s: %w", survivor.Name(), err)
	}
	members, err := parseEtcdMembers(string(res.Stdout))
	if err != nil {
		return fmt.Errorf("etcd members on %s: %w", survivor.Name(), err)
	}
	m, ok := memberOf(members, h.Name(), h.Spec.NodeIP())
	if !ok {
		return nil
	}
	log.Warn("etcd still lists the reset control plane; removing its member", "host", h.Name(), "member", m.ID, "via", survivor.Name())
	if _, err := survivor.Exec(ctx, ssh.Cmd{Args: scripts.Etcd.Args("member-remove", m.ID)}); err != nil {
		return fmt.Errorf("remove etcd member %s (%s) on %s: %w", m.ID, h.Name(), survivor.Name(), err)
	}
	return nil
}
