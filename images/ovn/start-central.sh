#!/bin/sh
# Start OVN central (NB + SB ovsdb-server, ovn-northd) inside a rollout-ovn-central container, with the
# databases listening on plain TCP (NB 6641, SB 6642) on every address of the container.
# Runs the Debian units (ovn-central.service) under the container's systemd; idempotent.
# Prints the SB remote ("tcp:<ip>:6642") on stdout once `ovn-sbctl show` answers.
# Plain TCP is for tests and the lab only (no TLS, no RBAC).
set -eu
cat > /etc/default/ovn-central <<'CONF'
# Written by rollout-ovn-start-central (test fixture: insecure TCP remotes)
OVN_CTL_OPTS="--db-nb-create-insecure-remote=yes --db-sb-create-insecure-remote=yes"
CONF
systemctl enable ovn-central.service >/dev/null 2>&1 || true
systemctl restart ovn-central.service
i=0
until ovn-sbctl --timeout=3 --db=tcp:127.0.0.1:6642 show >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge 30 ]; then
    echo "OVN SB DB did not answer on tcp:127.0.0.1:6642 after 30 tries" >&2
    exit 1
  fi
  sleep 1
done
ip="$(hostname -I | awk '{print $1}')"
echo "tcp:${ip}:6642"
