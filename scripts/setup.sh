#!/usr/bin/env bash
# First command of the README: installs Debian packages, builds hvm, builds the default guest
# (Debian's kernel + busybox) and boots it with its console on this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build
images/build-guest.sh
echo "hvm: booting images/out/vmlinuz (type 'poweroff -f' to leave, or Ctrl-A x)"
exec build/hvm -m 512 -smp 2 -kernel images/out/vmlinuz -initrd images/out/initrd.img \
  -append "console=ttyS0" -serial stdio -display none -no-reboot
