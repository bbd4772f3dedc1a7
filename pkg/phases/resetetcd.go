package phases

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"installer.dev/installer/pkg/ssh"
)

// etcdMembersScript lists etcd's members ("list") or removes one by its hex ID ("remove ID") with
// etcdctl inside the local etcd static pod, authenticated with kubeadm's etcd health-check client
// certificate (kubeadm mounts /etc/kubernetes/pki/etcd into the pod at the same path).
const etcdMembersScript = `mode=$1 member=$2
id=$(crictl ps -q --name '^etcd$' --state running 2>/dev/null | head -n 1)
[ -n "$id" ] || { echo "no running etcd container on this host" >&2; exit 1; }
ctl() {
  crictl exec "$id" etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
    --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key "$@"
}
case "$mode" in
  list) ctl member list -w simple ;;
  remove) ctl member remove "$member" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
`

// etcdMember is one line of `etcdctl member list -w simple`.
type etcdMember struct {
	ID, Status, Name string
	PeerURLs         []string
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
		members = append(members, etcdMember{ID: f[0], Status: f[1], Name: f[2], PeerURLs: strings.Split(f[3], ",")})
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
func removeEtcdMember(ctx context.Context, survivor, h *Host) error {
	if h.run.DryRun {
		h.run.plan(PlannedAction{Host: h.Name(), Command: fmt.Sprintf("check etcd's members on %s; remove %s's if kubeadm reset left it", survivor.Name(), h.Name())})
		return nil
	}
	res, err := survivor.Query(ctx, ssh.Cmd{Args: []string{"sh", "-c", etcdMembersScript, "etcd", "list"}})
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
	h.run.Log.Warn("etcd still lists the reset control plane; removing its member", "host", h.Name(), "member", m.ID, "via", survivor.Name())
	if _, err := survivor.Exec(ctx, ssh.Cmd{Args: []string{"sh", "-c", etcdMembersScript, "etcd", "remove", m.ID}}); err != nil {
		return fmt.Errorf("remove etcd member %s (%s) on %s: %w", m.ID, h.Name(), survivor.Name(), err)
	}
	return nil
}
