#!/usr/bin/env bash
# Unpacks Debian packages of another architecture (or release) into a folder,
# as a sysroot for qemu-user or a musl loader, without changing this machine:
# apt runs with lists and a cache of its own under DEST, so dpkg's
# architectures and the machine's package lists stay as they are.
#
#   scripts/deb-fetch.sh ARCH SUITE DEST PKG...
#
# ARCH is a Debian architecture (amd64, arm64), SUITE a release (bookworm,
# trixie), fetched from the Debian mirror this machine's apt sources use.
# The packages are unpacked into DEST/root; a second call with the same
# arguments does nothing.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 ARCH SUITE DEST PKG..." >&2
  exit 2
fi
arch=$1 suite=$2 dest=$3
shift 3
want="$arch $suite $*"
if [ -f "$dest/.fetched" ] && [ "$(cat "$dest/.fetched")" = "$want" ]; then
  exit 0
fi

# The mirror of this machine's Debian sources (deb822 or one-line format).
mirror=$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -v -- '-security' | grep '/debian/*$' | head -1
) || true
if [ -z "$mirror" ]; then
  echo "deb-fetch: no Debian mirror in /etc/apt/sources.list*: add the machine's Debian sources" >&2
  exit 1
fi

rm -rf "$dest"
mkdir -p "$dest/apt/lists/partial" "$dest/apt/cache/archives/partial" "$dest/debs" "$dest/root"
echo "deb $mirror $suite main" >"$dest/apt/sources.list"
opts=(
  -q -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
  -o "Dir::Etc::SourceList=$dest/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=$dest/apt/lists" -o "Dir::Cache=$dest/apt/cache"
  -o "APT::Sandbox::User=$(id -un)"
)
echo "deb-fetch: $* ($arch, $suite) into $dest"
apt-get "${opts[@]}" update >"$dest/apt/update.log" 2>&1 || { cat "$dest/apt/update.log" >&2; exit 1; }
(cd "$dest/debs" && apt-get "${opts[@]}" download "$@")
for deb in "$dest"/debs/*.deb; do
  dpkg -x "$deb" "$dest/root"
done
echo "$want" >"$dest/.fetched"
