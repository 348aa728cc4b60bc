#!/usr/bin/env bash
# Build the OVN central image `localhost/rollout-ovn-central:latest`: the node base image plus Debian's
# ovn-central (OVN 23.03 on bookworm: NB + SB ovsdb-server and ovn-northd), with
# images/ovn/start-central.sh installed as /usr/local/sbin/rollout-ovn-start-central.
#
# Interface (used by Molecule and by the lab):
#   podman run -d --systemd=always --name X --hostname X --network NET \
#       localhost/rollout-ovn-central:latest /lib/systemd/systemd
#   podman exec X rollout-ovn-start-central
# After that the NB DB listens on tcp:<container ip>:6641 and the SB DB on tcp:<container ip>:6642
# (plain TCP: a test fixture, never a production setting).  The script prints the SB remote.
#
# Cached by content hash (this script, the start script, the base image id).  Prints the image reference.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
base="localhost/rollout-node:latest"
podman image exists "$base" || "$here/build-node-image.sh" >/dev/null
base_id="$(podman image inspect --format '{{.Id}}' "$base")"
hash="$( (cat "$0" "$here/ovn/start-central.sh"; echo "$base_id") | sha256sum | cut -c1-12)"
ref="localhost/rollout-ovn-central:${hash}"
if ! podman image exists "$ref"; then
  echo "Building $ref from $base" >&2
  podman build --network host -t "$ref" -f - "$here/ovn" >&2 <<'CONTAINERFILE'
FROM localhost/rollout-node:latest
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ovn-central \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY start-central.sh /usr/local/sbin/rollout-ovn-start-central
RUN chmod 0755 /usr/local/sbin/rollout-ovn-start-central
CMD ["/lib/systemd/systemd"]
CONTAINERFILE
fi
podman tag "$ref" localhost/rollout-ovn-central:latest
echo "$ref"
