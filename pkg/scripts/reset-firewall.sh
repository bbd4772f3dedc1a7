#!/bin/sh
# reset-firewall.sh MODE: lists (MODE "list") or removes (MODE "remove") only the firewall state of
# kube-proxy, the kubelet and the CNI: iptables chains named KUBE-*, FLANNEL-* and CNI-* with every
# rule that jumps to them from other chains, in both iptables back ends, and the nftables tables
# those components create by name. Every other rule, chain and table stays. It prints one line per
# item present (list) or removed (remove), and "no-nft ..." when nft is not installed.
mode=$1
ours='^(KUBE-|FLANNEL-|CNI-)'
cmds=""
for c in iptables-nft ip6tables-nft iptables-legacy ip6tables-legacy; do
  command -v "$c" >/dev/null 2>&1 && cmds="$cmds $c"
done
if [ -z "$cmds" ]; then
  for c in iptables ip6tables; do command -v "$c" >/dev/null 2>&1 && cmds="$cmds $c"; done
fi
for c in $cmds; do
  for t in filter nat mangle raw security; do
    # Listing a legacy table creates it: only look at those the kernel already has.
    case "$c" in
      iptables-legacy) grep -qx "$t" /proc/net/ip_tables_names 2>/dev/null || continue ;;
      ip6tables-legacy) grep -qx "$t" /proc/net/ip6_tables_names 2>/dev/null || continue ;;
    esac
    rules=$("$c" -w -t "$t" -S 2>/dev/null) || continue
    chains=$(printf '%s\n' "$rules" | awk -v re="$ours" '$1 == "-N" && $2 ~ re { print $2 }')
    [ -n "$chains" ] || continue
    # Jumps into our chains from the others (built-in or foreign), by number, highest first.
    for from in $(printf '%s\n' "$rules" | awk -v re="$ours" '($1 == "-P" || $1 == "-N") && $2 !~ re { print $2 }'); do
      "$c" -w -t "$t" -n -L "$from" --line-numbers 2>/dev/null |
        awk -v re="$ours" 'NR > 2 && $2 ~ re { print $1, $2 }' | sort -rn |
        while read -r num target; do
          printf 'jump %s %s %s#%s -> %s\n' "$c" "$t" "$from" "$num" "$target"
          if [ "$mode" = remove ]; then "$c" -w -t "$t" -D "$from" "$num" || exit 1; fi
        done || exit 1
    done
    for ch in $chains; do
      printf 'chain %s %s %s\n' "$c" "$t" "$ch"
      if [ "$mode" = remove ]; then "$c" -w -t "$t" -F "$ch" || exit 1; fi
    done
    if [ "$mode" = remove ]; then
      for ch in $chains; do "$c" -w -t "$t" -X "$ch" || exit 1; done
    fi
  done
done
if command -v nft >/dev/null 2>&1; then
  tables=$(nft list tables 2>/dev/null)
  for ft in "ip kube-proxy" "ip6 kube-proxy" "ip flannel-ipv4" "ip6 flannel-ipv6" "ip cni_hostport" "ip6 cni_hostport" "inet cni_plugins_masquerade"; do
    printf '%s\n' "$tables" | grep -qx "table $ft" || continue
    printf 'nft-table %s\n' "$ft"
    # $ft is two words, the family and the table's name.
    if [ "$mode" = remove ]; then nft delete table "${ft%% *}" "${ft#* }" || exit 1; fi
  done
else
  echo "no-nft nft is not installed: nftables tables were not checked"
fi
exit 0
