#!/usr/bin/env bash
# Installs the Debian packages hvm needs to build, test and benchmark. Idempotent: apt is only
# called when something is missing.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config clang-format
  doctest-dev libcapstone-dev zlib1g-dev
  python3 binutils cpio gzip busybox-static
  qemu-system-x86 qemu-utils seabios
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "hvm: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
