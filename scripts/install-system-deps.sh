#!/usr/bin/env bash
# The Debian 12 packages rollout's lab, Molecule and tests need (podman with runc, debootstrap for the
# node image, ...). Idempotent and quick when everything is there: only missing packages are installed,
# which needs root. Used by .ci/run and by `make deps` (a prerequisite of `make test` and `make lab-demo`).
set -euo pipefail
PACKAGES=(
  podman runc conmon slirp4netns uidmap fuse-overlayfs iptables netavark aardvark-dns
  debootstrap apt-utils dpkg-dev openssl openssh-client sqlite3 make git tmux ca-certificates
  python3-venv
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; run as root: bash $0" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
