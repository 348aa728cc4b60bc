#!/usr/bin/env bash
# Build the Debian 12 node image locally (no registry is reachable): debootstrap + `podman import`.
# The image plays a freshly installed server: systemd as PID 1, sshd, python3, sudo.
# It carries NO ssh host keys: they are generated on first boot (ssh-keygen -A in a oneshot
# unit), exactly as a re-installed server gets new keys.
#
# Cached by content hash: the tag is the sha256 of this script + the package list, so an
# unchanged recipe is never rebuilt.  Prints the image reference on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages="systemd,systemd-sysv,dbus,openssh-server,python3,python3-apt,sudo,iproute2,procps,iputils-ping,ca-certificates,gnupg,kmod,cron,less"
hash="$(cat "$0" | sha256sum | cut -c1-12)"
ref="localhost/rollout-node:${hash}"
if podman image exists "$ref"; then
  podman tag "$ref" localhost/rollout-node:latest
  echo "$ref"
  exit 0
fi
work="$(mktemp -d /var/tmp/rollout-image.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "Building $ref with debootstrap (takes a few minutes)" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$work/root" "$mirror" >&2
chroot "$work/root" /bin/sh -eu <<'CHROOT'
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot (a fresh install gets fresh keys)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable ssh-hostkeys.service ssh.service >/dev/null 2>&1 || true
# Units that make no sense in a container and slow boot or fail.
for u in systemd-udevd.service systemd-udev-trigger.service getty@tty1.service systemd-timesyncd.service \
         apt-daily.timer apt-daily-upgrade.timer; do systemctl mask "$u" >/dev/null 2>&1 || true; done
echo 'PermitRootLogin prohibit-password' > /etc/ssh/sshd_config.d/rollout.conf
: > /etc/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
CHROOT
tar -C "$work/root" -c . | podman import \
  --change 'CMD ["/lib/systemd/systemd"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$ref" >&2
podman tag "$ref" localhost/rollout-node:latest
echo "$ref"
