#!/usr/bin/env bash
# Builds hvm's Linux test guest from Debian packages:
#   images/out/vmlinuz     Debian's stock kernel (the package linux-image-amd64 points at)
#   images/out/initrd.img  gzip'd newc cpio: static busybox, its applet links and images/guest-init
#                          as /init. No kernel modules: Debian's kernel has the 8250 UART, the
#                          serial console, devtmpfs and the initramfs decompressors built in.
# Cached: when both outputs exist and are newer than this script and guest-init, it exits at once.
# Downloaded .debs are kept in images/out/debs. Installs what it needs with apt-get when missing
# (as root, or through sudo). Set HVM_GUEST_REBUILD=1 to force a rebuild.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=$here/out
vmlinuz=$out/vmlinuz
initrd=$out/initrd.img

up_to_date() {
    local f
    for f in "$vmlinuz" "$initrd"; do
        [ -s "$f" ] || return 1
        [ "$f" -nt "$here/build-guest.sh" ] || return 1
        [ "$f" -nt "$here/guest-init" ] || return 1
    done
}

if [ "${HVM_GUEST_REBUILD:-0}" != 1 ] && up_to_date; then
    echo "build-guest: up to date: $vmlinuz $initrd"
    exit 0
fi

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
apt_updated=0
apt_update_once() {
    if [ "$apt_updated" = 0 ]; then
        "${as_root[@]}" apt-get update -qq
        apt_updated=1
    fi
}

# Host tools: cpio and gzip to pack the initrd; apt-get download and dpkg-deb come with apt/dpkg.
missing=()
command -v cpio >/dev/null || missing+=(cpio)
command -v gzip >/dev/null || missing+=(gzip)
if ((${#missing[@]})); then
    echo "build-guest: installing ${missing[*]}"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
fi

# The versioned kernel package behind the linux-image-amd64 metapackage, e.g.
# linux-image-6.1.0-56-amd64 (apt-get download does not follow dependencies).
resolve_kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}
kernel_pkg=$(resolve_kernel_package)
if [ -z "$kernel_pkg" ]; then
    apt_update_once
    kernel_pkg=$(resolve_kernel_package)
fi
if [ -z "$kernel_pkg" ]; then
    echo "build-guest: cannot resolve the kernel package behind linux-image-amd64 (apt-cache)" >&2
    exit 1
fi

mkdir -p "$out/debs"
# Fetches the candidate version of package $1 into out/debs unless it is already there; prints the
# .deb's path.
fetch_deb() {
    local pkg=$1 version deb
    version=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        apt_update_once
        version=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
    fi
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        echo "build-guest: no installable version of $pkg" >&2
        return 1
    fi
    # .deb names encode the epoch's ':' as %3a.
    local debs=("$out/debs/${pkg}_${version/:/%3a}_"*.deb)
    deb=${debs[0]}
    if [ ! -e "$deb" ]; then
        echo "build-guest: downloading $pkg $version" >&2
        # As root, apt would warn that it cannot drop to its _apt sandbox user for our directory.
        (cd "$out/debs" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$pkg=$version" >&2)
        debs=("$out/debs/${pkg}_${version/:/%3a}_"*.deb)
        deb=${debs[0]}
        [ -e "$deb" ] || { echo "build-guest: apt-get download of $pkg left no .deb" >&2; return 1; }
    fi
    echo "$deb"
}

kernel_deb=$(fetch_deb "$kernel_pkg")
busybox_deb=$(fetch_deb busybox-static)

work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The kernel: only ./boot/vmlinuz-* is needed, not the ~400 MB of modules (dpkg -x would unpack
# everything).
mkdir "$work/kernel"
dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$work/kernel" --wildcards './boot/vmlinuz-*'
kernel_images=("$work/kernel/boot/"vmlinuz-*)
kernel_image=${kernel_images[0]}
[ -s "$kernel_image" ] || { echo "build-guest: no vmlinuz in $kernel_deb" >&2; exit 1; }

# The initramfs tree.
mkdir "$work/bb"
dpkg -x "$busybox_deb" "$work/bb"
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc}
install -m 0755 "$work/bb/bin/busybox" "$root/bin/busybox"
# Applet links where busybox itself says they belong (bin/sh, sbin/poweroff, usr/bin/...).
"$root/bin/busybox" --list-full | while read -r applet; do
    [ -n "$applet" ] || continue
    [ "$applet" = bin/busybox ] && continue
    dir=$(dirname "$applet")
    mkdir -p "$root/$dir"
    # Relative link to /bin/busybox from the applet's directory: one ".." per path component.
    rel=..
    d=$dir
    while [[ $d == */* ]]; do
        rel=../$rel
        d=${d%/*}
    done
    rel=$rel/bin/busybox
    ln -sf "$rel" "$root/$applet"
done
install -m 0755 "$here/guest-init" "$root/init"
# The kernel opens /dev/console for /init before devtmpfs is mounted. Debian's built-in initramfs
# already has it; create it too when we can (mknod needs root).
if [ "$(id -u)" -eq 0 ]; then
    mknod -m 600 "$root/dev/console" c 5 1
    mknod -m 666 "$root/dev/null" c 1 3
fi

(cd "$root" && find . -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9 -n >"$work/initrd.img"

# Publish both at the end, so an interrupted run never leaves a half-written output that looks
# up to date.
install -m 0644 "$kernel_image" "$out/vmlinuz.tmp"
install -m 0644 "$work/initrd.img" "$out/initrd.img.tmp"
mv -f "$out/vmlinuz.tmp" "$vmlinuz"
mv -f "$out/initrd.img.tmp" "$initrd"
basename "$kernel_image" | sed 's/^vmlinuz-//' >"$out/kernel-release"
echo "build-guest: built $vmlinuz ($(basename "$kernel_image")) and $initrd" \
    "($(stat -c %s "$initrd") bytes)"
