#!/usr/bin/env bash
# Print the path of a tarball of a minimal Debian bookworm root file system (debootstrap minbase
# plus scripts/robot/rootfs-packages.txt), building it if it is not cached. The cache key is the
# suite, mirror, architecture and package list, so changing the list rebuilds it; a new machine
# builds it once (~40-90 s), later runs reuse it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${COACHCAM_CI_CACHE:-/var/cache/coachcam-ci}
SUITE=bookworm
MIRROR=${COACHCAM_CI_MIRROR:-http://deb.debian.org/debian}
ARCH=$(dpkg --print-architecture)
packages=$(grep -v -e '^#' -e '^$' "$here/rootfs-packages.txt" | sort | paste -sd, -)
key=$(printf '%s\n' "$SUITE" "$MIRROR" "$ARCH" "$packages" | sha256sum | cut -c1-16)
tarball="$CACHE/rootfs-$SUITE-$ARCH-$key.tar"

if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
    mkdir -p "$CACHE"
    build=$(mktemp -d "$CACHE/build.XXXXXX")
    trap 'rm -rf "$build"' EXIT
    echo "rootfs: debootstrap $SUITE ($packages) into $build" >&2
    debootstrap --variant=minbase --include="$packages" "$SUITE" "$build/root" "$MIRROR" \
        >"$build/debootstrap.log" 2>&1 || { tail -20 "$build/debootstrap.log" >&2; exit 1; }
    # Plain tar, no compression: extracting ~300 MB takes ~1 s; disk is cheaper than CPU here.
    tar -C "$build/root" --numeric-owner -cf "$build/rootfs.tar" .
    # Drop the tarball of an older package list (a run still reading it keeps it until closed).
    rm -f "$CACHE/rootfs-$SUITE-$ARCH-"*.tar
    mv "$build/rootfs.tar" "$tarball"
fi
echo "$tarball"
