#!/usr/bin/env bash
# Build the local apt repository of STAND-IN packages (kubeadm/kubelet/kubectl, NVIDIA vGPU manager and
# GRID guest driver) that Molecule scenarios and the lab bind-mount at /srv/rollout-standin.
# Usage: images/build-standin-repo.sh OUTDIR      (prints OUTDIR on stdout)
#
# Invariants:
# - Sources are images/standin/<pkg>/ (DEBIAN/ + files); images/standin/packages.tsv lists name, version,
#   source dir and pool.  @VERSION@ / @UPSTREAM@ in text files become the Debian / upstream version.
# - Deterministic: fixed mtimes (SOURCE_DATE_EPOCH), root-owned, sorted indexes, `gzip -n`; the same
#   sources give byte-identical .deb files and indexes.
# - Cached: OUTDIR/.content-hash holds the hash of this script + sources; unchanged -> no rebuild.
# - Safe for concurrent callers (scenarios run in parallel): flock, build aside, then swap.
# Layout: OUTDIR/ is one flat repo indexing every pool (`deb [trusted=yes] file:/srv/rollout-standin ./`);
# each pool (kubernetes/v1.31, nvidia/16.9, ...) is also a flat repo of its own, like pkgs.k8s.io's
# one-repo-per-minor (`deb [trusted=yes] file:/srv/rollout-standin/kubernetes/v1.31 ./`).
# Needs only dpkg-deb, sha256sum/md5sum, gzip, flock (all in a Debian base system).
set -euo pipefail
out="${1:?usage: $0 OUTDIR}"
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/standin"
export SOURCE_DATE_EPOCH=1764374400   # 2025-11-29T00:00:00Z; fixed so builds are reproducible
export LC_ALL=C TZ=UTC

hash="$( (cat "$0"; cd "$src" && find . -print0 | sort -z | xargs -0 -I{} sh -c \
  'if [ -L "{}" ]; then echo "L {} $(readlink "{}")"; elif [ -f "{}" ]; then echo "F {} $(stat -c %a "{}")"; cat "{}"; else echo "D {}"; fi') \
  | sha256sum | cut -c1-16)"
mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
if [ -f "$out/.content-hash" ] && [ "$(cat "$out/.content-hash")" = "$hash" ]; then
  echo "$out"; exit 0
fi
tmp="$(mktemp -d "$out.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

build_deb() {  # name version srcdir -> path of the .deb (under $tmp/debs)
  local name="$1" version="$2" dir="$3" upstream stage deb
  upstream="${version%%-*}"
  stage="$tmp/stage/$name-$version"
  mkdir -p "$stage" "$tmp/debs"
  cp -a "$src/$dir/." "$stage/"
  grep -rlI --null -e '@VERSION@' -e '@UPSTREAM@' "$stage" | xargs -0 -r sed -i \
    -e "s/@VERSION@/$version/g" -e "s/@UPSTREAM@/$upstream/g"
  find "$stage" -type d -exec chmod 0755 {} +
  find "$stage" -type f -perm -u+x -exec chmod 0755 {} +
  find "$stage" -type f ! -perm -u+x -exec chmod 0644 {} +
  find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  deb="$tmp/debs/${name}_${version}_all.deb"
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
  echo "$deb"
}

write_index() {  # repo_dir: flat repo; indexes every .deb below it
  local repo="$1" deb rel
  : > "$repo/Packages"
  while IFS= read -r rel; do
    deb="$repo/$rel"
    dpkg-deb -f "$deb" >> "$repo/Packages"
    {
      echo "Filename: ./$rel"
      echo "Size: $(stat -c %s "$deb")"
      echo "MD5sum: $(md5sum "$deb" | cut -d' ' -f1)"
      echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
      echo
    } >> "$repo/Packages"
  done < <(cd "$repo" && find . -name '*.deb' -printf '%P\n' | sort)
  gzip -9n < "$repo/Packages" > "$repo/Packages.gz"
  {
    echo "Origin: rollout-standin"
    echo "Label: rollout stand-in packages (test doubles, not vendor software)"
    echo "Date: $(date -u -d "@$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S UTC')"
    echo "SHA256:"
    for f in Packages Packages.gz; do
      printf ' %s %s %s\n' "$(sha256sum "$repo/$f" | cut -d' ' -f1)" "$(stat -c %s "$repo/$f")" "$f"
    done
  } > "$repo/Release"
}

repo="$tmp/repo"
mkdir -p "$repo"
pools="$(grep -v '^#' "$src/packages.tsv" | awk 'NF && $4 != "*" {print $4}' | sort -u)"
while read -r name version dir pool; do
  case "$name" in ''|'#'*) continue ;; esac
  deb="$(build_deb "$name" "$version" "$dir")"
  if [ "$pool" = "*" ]; then targets="$pools"; else targets="$pool"; fi
  for p in $targets; do mkdir -p "$repo/$p"; cp "$deb" "$repo/$p/"; done
done < "$src/packages.tsv"
for p in $pools; do write_index "$repo/$p"; done
write_index "$repo"
echo "$hash" > "$repo/.content-hash"
find "$repo" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# Swap in: rename is atomic.  The previous tree is kept as OUTDIR.prev (not deleted) because running
# containers may still have it bind-mounted; the generation before that is removed.
rm -rf "$out.prev"
if [ -e "$out" ]; then mv "$out" "$out.prev"; fi
mv "$repo" "$out"
echo "$out"
