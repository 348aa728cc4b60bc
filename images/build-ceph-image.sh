#!/usr/bin/env bash
# Build the Ceph service image `localhost/rollout-ceph:latest`: the node base image plus Debian's own
# ceph-mon, ceph-mgr, ceph-osd and ceph-common (16.2.x "pacific" on bookworm), with
# images/ceph/bootstrap-mon.sh installed as /usr/local/sbin/rollout-ceph-bootstrap-mon.
#
# Interface (used by Molecule and by the lab):
#   podman run -d --systemd=always --name X --hostname X --network NET \
#       -v X-mon:/var/lib/ceph localhost/rollout-ceph:latest /lib/systemd/systemd
#   podman exec X rollout-ceph-bootstrap-mon [--fsid UUID] [--public-network CIDR]
# The bootstrap prints one JSON line {"fsid", "mon_host", "bootstrap_osd_key"} on stdout (the key is a
# secret: callers must not log it).  See images/ceph/bootstrap-mon.sh for the details.
#
# Cached by content hash: the tag is the sha256 of this script, the bootstrap script and the base
# image id, so an unchanged recipe is never rebuilt.  Prints the image reference on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
base="localhost/rollout-node:latest"
podman image exists "$base" || "$here/build-node-image.sh" >/dev/null
base_id="$(podman image inspect --format '{{.Id}}' "$base")"
hash="$( (cat "$0" "$here/ceph/bootstrap-mon.sh"; echo "$base_id") | sha256sum | cut -c1-12)"
ref="localhost/rollout-ceph:${hash}"
if ! podman image exists "$ref"; then
  echo "Building $ref from $base" >&2
  podman build --network host -t "$ref" -f - "$here/ceph" >&2 <<'CONTAINERFILE'
FROM localhost/rollout-node:latest
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ceph-mon ceph-mgr ceph-osd ceph-common uuid-runtime \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY bootstrap-mon.sh /usr/local/sbin/rollout-ceph-bootstrap-mon
RUN chmod 0755 /usr/local/sbin/rollout-ceph-bootstrap-mon
CMD ["/lib/systemd/systemd"]
CONTAINERFILE
fi
podman tag "$ref" localhost/rollout-ceph:latest
echo "$ref"
