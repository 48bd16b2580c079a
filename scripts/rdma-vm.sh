#!/usr/bin/env bash
# Soft-RoCE test rig: runs a command inside a throwaway qemu VM whose kernel
# has an `rxe0` device (rdma_rxe over loopback), so RDMA code paths can be
# exercised for real on machines without RDMA hardware.
#
#   scripts/rdma-vm.sh [--] <command...>   run <command> in the VM
#   scripts/rdma-vm.sh --check             only prepare, say whether it can run
#
# The VM boots Debian's stock kernel (one package, fetched with apt) from a
# small busybox initramfs, loads the RDMA modules, creates rxe0 and chroots
# into this host's root, shared read-only over 9p. The command therefore
# sees the same files and tools as on the host, runs in the directory this
# script was called from, and can write only to /tmp (HOME=TMPDIR=/tmp).
# See scripts/RDMA-VM.md for environment variables, timings and exit codes.
#
# Exit codes: the command's own; 77 = skipped (the rig cannot be had here);
# 124 = time limit reached; 125 = the rig itself failed (see the boot log).
set -euo pipefail

CACHE=${ZCIO_VM_CACHE:-$HOME/.cache/zcio/rdma-vm}
TIMEOUT=${ZCIO_VM_TIMEOUT:-1200}
BOOT_TIMEOUT=${ZCIO_VM_BOOT_TIMEOUT:-300}   # host-side allowance for boot/poweroff
MEM=${ZCIO_VM_MEM:-2048}
SMP=${ZCIO_VM_SMP:-2}
ACCEL=${ZCIO_VM_ACCEL:-tcg}                 # KVM is not usable everywhere; TCG always is
KERNEL_META=${ZCIO_VM_KERNEL_PKG:-linux-image-amd64}

# Host packages the rig relies on: qemu, the RDMA userspace the command will
# use inside the VM (it runs the host's binaries), and the tools that build
# the initramfs.
PKGS=(qemu-system-x86 ibverbs-utils perftest rdma-core iproute2 libibverbs1
      ibverbs-providers xz-utils cpio kmod)
# Modules to load, dependencies are resolved with modprobe at build time.
# crc32_generic comes first: rdma_rxe asks the crypto API for "crc32" and
# fails with ENOENT if no module provides it yet.
MODULES=(crc32_generic rdma_rxe ib_uverbs virtio_pci 9pnet_virtio 9p)

say()  { printf 'rdma-vm: %s\n' "$*"; }
skip() { printf 'SKIPPED: %s\n' "$*"; exit 77; }
die()  { printf 'rdma-vm: FAILED: %s\n' "$*"; exit 125; }

check_only=0
case ${1:-} in
  --check) check_only=1; shift ;;
  --) shift ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac
[[ $check_only == 1 || $# -gt 0 ]] || { echo "usage: $0 [--check | [--] command...]" >&2; exit 2; }

[[ $(uname -m) == x86_64 ]] || skip "the rig needs an x86_64 host (this is $(uname -m))"
command -v apt-get >/dev/null && command -v dpkg >/dev/null \
  || skip "the rig needs a Debian-based host (apt-get and dpkg)"

mkdir -p "$CACHE"
LOG=$CACHE/prepare.log   # apt and build chatter goes here, not to stdout

# Scratch directories to remove, and the VM to stop, however we leave: qemu
# runs under timeout(1), which puts it in its own process group, so a ^C or
# a harness's SIGTERM would not reach it by itself.
CLEAN=() VM_PID=
cleanup() {
  if [[ -n $VM_PID ]]; then kill "$VM_PID" 2>/dev/null || true; fi
  rm -rf "${CLEAN[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
scratch() { mktemp -d "$CACHE/tmp.XXXXXX"; }

as_root() { if [[ $EUID == 0 ]]; then "$@"; elif sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi; }

apt_updated=0
apt_update() {   # at most once per run
  [[ $apt_updated == 0 ]] || return 0
  apt_updated=1
  say "apt-get update"
  as_root apt-get update >>"$LOG" 2>&1
}

install_missing() {
  local missing=() p
  for p in "${PKGS[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
  done
  [[ ${#missing[@]} == 0 ]] && return 0
  say "installing ${missing[*]}"
  apt_update || skip "apt-get update failed (not root and no sudo, or no network; see $LOG)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 \
    || skip "cannot install ${missing[*]} (see $LOG)"
}

# Downloads one package into the current directory without installing it.
# The .deb of a kernel or of busybox-static is all we need; installing
# busybox-static would also remove the dynamic busybox some hosts rely on.
apt_fetch() {
  apt-get download "$1" >>"$LOG" 2>&1 && return 0
  apt_update && apt-get download "$1" >>"$LOG" 2>&1
}

# ZCIO_VM_KERNEL_PKG names a versioned image package (linux-image-6.1.0-N-amd64)
# or a metapackage pointing at one; prints the versioned name, or nothing.
kernel_pkg() {
  if [[ $KERNEL_META == linux-image-[0-9]* ]]; then echo "$KERNEL_META"; return; fi
  { apt-cache depends "$KERNEL_META" 2>/dev/null || true; } | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# The kernel: Debian's current stock image (e.g. linux-image-6.1.0-56-amd64),
# with just the modules the VM loads, decompressed (busybox insmod cannot
# read .ko.xz). Cached per version; once cached, apt is not asked again.
prepare_kernel() {
  if [[ -f $CACHE/kernel/current ]]; then
    KVER=$(<"$CACHE/kernel/current"); KDIR=$CACHE/kernel/$KVER
    [[ $KERNEL_META == linux-image-[0-9]* ]] && KVER=${KERNEL_META#linux-image-} KDIR=$CACHE/kernel/$KVER
    # Reused as long as it holds the modules this script wants.
    [[ -f $KDIR/vmlinuz && -f $KDIR/modules/order && $(cat "$KDIR/modules/wanted" 2>/dev/null) == "${MODULES[*]}" ]] \
      && return 0
  fi
  local pkg tmp m line
  pkg=$(kernel_pkg)
  if [[ -z $pkg ]]; then apt_update || true; pkg=$(kernel_pkg); fi
  [[ -n $pkg ]] || skip "apt knows no kernel package behind $KERNEL_META"
  KVER=${pkg#linux-image-}; KDIR=$CACHE/kernel/$KVER
  say "downloading $pkg"
  tmp=$(scratch); CLEAN+=("$tmp")
  (cd "$tmp" && apt_fetch "$pkg") || skip "cannot download $pkg (see $LOG)"
  dpkg -x "$tmp"/*.deb "$tmp/root"
  [[ -f $tmp/root/boot/vmlinuz-$KVER ]] || die "$pkg holds no /boot/vmlinuz-$KVER"
  depmod -b "$tmp/root" "$KVER"
  rm -rf "$KDIR"; mkdir -p "$KDIR/modules"
  cp "$tmp/root/boot/vmlinuz-$KVER" "$KDIR/vmlinuz"
  # modprobe prints each module's dependencies first, as "insmod <path>",
  # or "builtin <name>" for those compiled in; keep the first occurrence.
  : >"$KDIR/modules/order"
  for m in "${MODULES[@]}"; do
    modprobe -d "$tmp/root" -S "$KVER" --show-depends "$m" >"$tmp/deps" || die "no module $m in $pkg"
    while read -r line; do
      [[ $line == insmod\ * ]] || continue
      line=${line#insmod }; line=${line%% *}
      local name=${line##*/}; name=${name%%.ko*}
      grep -qx "$name" "$KDIR/modules/order" && continue
      case $line in
        *.ko.xz) xz -dc "$line" >"$KDIR/modules/$name.ko" ;;
        *.ko.gz) gzip -dc "$line" >"$KDIR/modules/$name.ko" ;;
        *) cp "$line" "$KDIR/modules/$name.ko" ;;
      esac
      echo "$name" >>"$KDIR/modules/order"
    done <"$tmp/deps"
  done
  echo "${MODULES[*]}" >"$KDIR/modules/wanted"
  echo "$KVER" >"$CACHE/kernel/current"
  rm -rf "$tmp"
}

# PID 1 of the VM (busybox sh). It reports to the host over the second
# serial port (ttyS1, which carries nothing else) with marker lines
# "@@zcio-vm@@ <nonce> ready|exit <code>|error <why>"; the kernel console
# (ttyS0) goes to the boot log.
read -r -d '' INIT <<'EOF' || true
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
arg() { sed -n "s/.*zcio\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
run=$(arg run); nonce=$(arg nonce); limit=$(arg timeout)
out=/dev/ttyS1
stty -F $out raw -echo           # pass the command's bytes through untouched
mark() { echo "@@zcio-vm@@ $nonce $*" >$out; }
off() { poweroff -f; echo o >/proc/sysrq-trigger; sleep 30; exit 1; }
fail() { echo "init: $*"; mark error "$*"; off; }

while read -r m; do
  insmod /lib/modules/$m.ko || echo "init: insmod $m failed"
done </lib/modules/order
ip link set lo up

h=/mnt/host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose,ro hostroot $h \
  || fail "cannot mount the host's root over 9p"
cp $h$run/job.sh /job.sh || fail "cannot read $run/job.sh from the host"
# The host's /tmp stays reachable (read-only) at /run/host-tmp: a checkout
# there (CI clones into mktemp -d) is the command's directory.
mount -t proc proc $h/proc && mount -t sysfs sysfs $h/sys && mount -t devtmpfs devtmpfs $h/dev \
  && mount -t tmpfs tmpfs $h/run && mkdir -p $h/run/host-tmp && mount -o bind $h/tmp $h/run/host-tmp \
  && mount -t tmpfs tmpfs $h/tmp \
  && mkdir -p $h/dev/shm $h/dev/pts && mount -t tmpfs tmpfs $h/dev/shm \
  && mount -t devpts devpts $h/dev/pts || fail "cannot mount the chroot's file systems"
cp /job.sh $h/tmp/.zcio-vm-job.sh
chroot $h /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin rdma link add rxe0 type rxe netdev lo || fail "rdma link add rxe0 failed"
echo 1 >/proc/sys/kernel/printk   # keep kernel chatter off the console while the command runs

mark ready
chroot $h /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  timeout -k 10 "$limit" /bin/bash /tmp/.zcio-vm-job.sh </dev/null >$out 2>&1
mark exit $?
off
EOF

prepare_initramfs() {
  local bb=/bin/busybox tmp hash
  # A static busybox: the host's, or one unpacked from busybox-static.
  if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' busybox-static 2>/dev/null) != ii* ]]; then
    bb=$CACHE/busybox
    if [[ ! -x $bb ]]; then
      say "downloading busybox-static"
      tmp=$(scratch); CLEAN+=("$tmp")
      (cd "$tmp" && apt_fetch busybox-static) || skip "cannot download busybox-static (see $LOG)"
      dpkg -x "$tmp"/*.deb "$tmp/root" && cp "$tmp/root/bin/busybox" "$bb"; rm -rf "$tmp"
    fi
  fi
  # Rebuilt whenever the init script, the kernel or busybox changes.
  hash=$( { printf '%s' "$INIT"; echo "$KVER"; cat "$KDIR/modules/order"; cksum <"$bb"; } | sha256sum | cut -c1-12)
  INITRD=$CACHE/initramfs-$KVER-$hash.gz
  [[ -f $INITRD ]] && return 0
  say "building the initramfs"
  tmp=$(scratch); CLEAN+=("$tmp")
  mkdir -p "$tmp"/{bin,dev,proc,sys,mnt/host,lib/modules}
  cp "$bb" "$tmp/bin/busybox"
  cp "$KDIR"/modules/*.ko "$KDIR/modules/order" "$tmp/lib/modules/"
  printf '%s\n' "$INIT" >"$tmp/init"; chmod 755 "$tmp/init" "$tmp/bin/busybox"
  (cd "$tmp" && find . -print0 | cpio --null --quiet -o -H newc -R 0:0) | gzip -1 >"$INITRD.part"
  rm -rf "$tmp" "$CACHE"/initramfs-*.gz
  mv "$INITRD.part" "$INITRD"
}

install_missing
prepare_kernel
prepare_initramfs
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not available"

if [[ $check_only == 1 ]]; then
  say "ready: $(qemu-system-x86_64 --version | head -1), kernel $KVER, accel $ACCEL, cache $CACHE"
  exit 0
fi

# The job the VM runs: the caller's environment (a fixed list plus names or
# NAME=VALUE words in ZCIO_VM_ENV), the caller's directory, the command.
RUN=$(scratch); CLEAN+=("$RUN")
{
  echo 'export HOME=/tmp TMPDIR=/tmp'
  for v in PATH CI LANG LC_ALL RUST_BACKTRACE RUST_LOG NODE_OPTIONS $(compgen -e ZCIO_ || true) ${ZCIO_VM_ENV:-}; do
    if [[ $v == *=* ]]; then printf 'export %q\n' "$v"
    elif [[ -v $v ]]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
  done
  dir=$(pwd -P)
  case $dir in /tmp | /tmp/*) dir=/run/host-tmp${dir#/tmp} ;; esac
  printf 'cd %q || exit 125\n' "$dir"
  printf 'exec'; printf ' %q' "$@"; echo
} >"$RUN/job.sh"

nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
BOOTLOG=$CACHE/boot.log
say "booting $KVER ($ACCEL, ${SMP} cpus, ${MEM} MiB; boot log $BOOTLOG)"
start=$(date +%s)
# ttyS0 (kernel console) goes to the boot log, ttyS1 (the command's output
# and the markers) to a pipe read here.
exec 3< <(exec timeout -k 10 $((TIMEOUT + BOOT_TIMEOUT)) qemu-system-x86_64 \
  -nodefaults -no-user-config -no-reboot -display none -monitor none \
  -accel "$ACCEL" -cpu max -smp "$SMP" -m "$MEM" \
  -kernel "$KDIR/vmlinuz" -initrd "$INITRD" \
  -append "console=ttyS0 panic=-1 zcio.run=$RUN zcio.nonce=$nonce zcio.timeout=$TIMEOUT" \
  -serial "file:$BOOTLOG" -serial stdio \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  </dev/null 2>"$CACHE/qemu.log")
VM_PID=$!
# Passes the command's output through as it comes, line by line, and keeps
# the marker lines. (awk would be quicker, but mawk holds piped input back
# until its buffer fills, and output must stream.)
code= error=
while IFS= read -r -u 3 line || [[ -n $line ]]; do
  line=${line%$'\r'}
  if [[ $line == *"@@zcio-vm@@ $nonce "* ]]; then
    [[ -n ${line%%@@zcio-vm@@*} ]] && printf '%s\n' "${line%%@@zcio-vm@@*}"  # output without final newline
    read -r kind rest <<<"${line##*@@zcio-vm@@ $nonce }"
    case $kind in
      ready) say "VM ready after $(( $(date +%s) - start )) s, rxe0 up; running: $*" ;;
      exit) code=$rest ;;
      error) error=$rest ;;
    esac
    continue
  fi
  printf '%s\n' "$line"
done
exec 3<&-
qemu_rc=0; wait "$VM_PID" || qemu_rc=$?
VM_PID=
elapsed=$(( $(date +%s) - start ))

if [[ -n $code ]]; then
  note=; [[ $code == 124 ]] && note=" (the time limit of ${TIMEOUT} s, ZCIO_VM_TIMEOUT)"
  say "command exited with $code$note; VM ran ${elapsed} s"
  exit "$code"
fi
[[ -n $error ]] && die "VM setup: $error (boot log $BOOTLOG)"
if [[ $qemu_rc == 124 || $qemu_rc == 137 ]]; then
  say "FAILED: the VM did not finish within $((TIMEOUT + BOOT_TIMEOUT)) s and was killed (boot log $BOOTLOG)"
  exit 124
fi
die "the VM ended without reporting an exit code (qemu exit $qemu_rc; see $BOOTLOG and $CACHE/qemu.log)"
