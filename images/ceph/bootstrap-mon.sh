#!/bin/sh
# Bootstrap a one-mon, one-mgr Ceph cluster inside a rollout-ceph container (test fixture and lab).
#
# Usage: rollout-ceph-bootstrap-mon [--fsid UUID] [--public-network CIDR] [--bootstrap-osd-key KEY]
#   --fsid               cluster fsid (default: a new uuid on the first run)
#   --public-network     default: the network of the container's first global IPv4 address
#   --bootstrap-osd-key  use this cephx key for client.bootstrap-osd (default: generated); lets a static
#                        test inventory carry the key, as a real inventory carries it in vault
#
# Invariants:
# - Idempotent: a second run (same container) starts nothing new and prints the same JSON.
# - Daemons run as the Debian units ceph-mon@<host> / ceph-mgr@<host> under the container's systemd.
# - Pools default to size 1 and CRUSH chooses leaves by OSD (type 0): one small node is a "cluster".
# - client.bootstrap-osd (profile bootstrap-osd) is created: its key is what the ceph_osd role needs.
# Output: one JSON line {"fsid": ..., "mon_host": ..., "public_network": ..., "bootstrap_osd_key": ...}
# on stdout.  The key is a secret: callers must keep it out of logs (no_log).
set -eu
fsid=""
pubnet=""
osd_key=""
while [ $# -gt 0 ]; do
  case "$1" in
    --fsid) fsid="$2"; shift 2 ;;
    --public-network) pubnet="$2"; shift 2 ;;
    --bootstrap-osd-key) osd_key="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 64 ;;
  esac
done
id="$(hostname -s)"
cidr="$(ip -o -4 addr show scope global | awk '{print $4; exit}')"
ip="${cidr%/*}"
[ -n "$pubnet" ] || pubnet="$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_interface(sys.argv[1]).network)' "$cidr")"
mon_dir="/var/lib/ceph/mon/ceph-$id"
bootstrap_keyring=/var/lib/ceph/bootstrap-osd/ceph.keyring

if [ ! -e "$mon_dir/done" ]; then
  [ -n "$fsid" ] || fsid="$(uuidgen)"
  cat > /etc/ceph/ceph.conf <<CONF
[global]
fsid = $fsid
mon_initial_members = $id
mon_host = $ip
public_network = $pubnet
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
osd_memory_target = 939524096
CONF
  tmp="$(mktemp -d)"
  ceph-authtool --create-keyring "$tmp/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring /etc/ceph/ceph.client.admin.keyring --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  mkdir -p /var/lib/ceph/bootstrap-osd
  if [ -n "$osd_key" ]; then key_opt="--add-key=$osd_key"; else key_opt="--gen-key"; fi
  ceph-authtool --create-keyring "$bootstrap_keyring" "$key_opt" -n client.bootstrap-osd \
    --cap mon 'profile bootstrap-osd' --cap mgr 'allow r' >/dev/null
  ceph-authtool "$tmp/mon.keyring" --import-keyring /etc/ceph/ceph.client.admin.keyring >/dev/null
  ceph-authtool "$tmp/mon.keyring" --import-keyring "$bootstrap_keyring" >/dev/null
  monmaptool --create --addv "$id" "[v2:$ip:3300,v1:$ip:6789]" --fsid "$fsid" "$tmp/monmap" >/dev/null
  mkdir -p "$mon_dir"
  chown -R ceph:ceph /var/lib/ceph "$tmp"
  chmod 0600 "$bootstrap_keyring" /etc/ceph/ceph.client.admin.keyring
  runuser -u ceph -- ceph-mon --mkfs -i "$id" --monmap "$tmp/monmap" --keyring "$tmp/mon.keyring"
  touch "$mon_dir/done"
  rm -rf "$tmp"
fi
systemctl enable --now "ceph-mon@$id.service" >/dev/null 2>&1
i=0
until ceph --connect-timeout 5 mon stat >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 30 ] || { echo "ceph-mon@$id did not answer" >&2; exit 1; }
  sleep 1
done
mgr_dir="/var/lib/ceph/mgr/ceph-$id"
if [ ! -e "$mgr_dir/keyring" ]; then
  mkdir -p "$mgr_dir"
  ceph auth get-or-create "mgr.$id" mon 'allow profile mgr' osd 'allow *' mds 'allow *' > "$mgr_dir/keyring"
  chown -R ceph:ceph "$mgr_dir"
fi
systemctl enable --now "ceph-mgr@$id.service" >/dev/null 2>&1
fsid="$(ceph fsid)"
key="$(ceph-authtool -p -n client.bootstrap-osd "$bootstrap_keyring")"
printf '{"fsid": "%s", "mon_host": "%s", "public_network": "%s", "bootstrap_osd_key": "%s"}\n' \
  "$fsid" "$ip" "$pubnet" "$key"
