#!/usr/bin/env python3
"""Boot benchmark: wall time from process start to the Debian guest's init marker
(`HVM-INIT-OK` on the serial console), hvm beside QEMU with the same accelerator class on the same
kernel, initrd and options, in the same run; medians of --repeat, ratio printed.

  bench/boot.py --build build [--accel emu|kvm] [--smp 1] [--repeat 5]

--accel emu compares `hvm -accel emu` with `qemu-system-x86_64 -accel tcg` (both software);
--accel kvm compares both on KVM (meaningful only where KVM is hardware-backed). The guest is
images/out/{vmlinuz,initrd.img} (images/build-guest.sh) booted with hvm.test=poweroff.
"""
import argparse
import os
import re
import selectors
import statistics
import subprocess
import sys
import time

MARKER = re.compile(rb"HVM-INIT-OK")


def time_to_marker(cmd, timeout):
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                raise RuntimeError(f"timeout; last output {buf[-200:]!r}")
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                raise RuntimeError(f"VMM exited before the marker; last output {buf[-200:]!r}")
            buf += data
            if MARKER.search(buf):
                return time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--images", default=os.path.join(os.path.dirname(__file__), "..", "images", "out"))
    ap.add_argument("--accel", default="emu", choices=["emu", "kvm"])
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=600)
    o = ap.parse_args()
    common = ["-m", "512", "-smp", str(o.smp), "-kernel", os.path.join(o.images, "vmlinuz"),
              "-initrd", os.path.join(o.images, "initrd.img"),
              "-append", "console=ttyS0 hvm.test=poweroff", "-serial", "stdio",
              "-display", "none", "-no-reboot"]
    hvm = [os.path.join(o.build, "hvm"), "-accel", o.accel] + common
    if o.accel == "emu":
        qemu = ["qemu-system-x86_64", "-M", "pc", "-accel", "tcg"] + common
    else:
        qemu = ["qemu-system-x86_64", "-M", "pc", "-accel", "kvm", "-cpu",
                "host,-arch-capabilities"] + common
    h, q = [], []
    for _ in range(o.repeat):  # interleaved, so drift hits both alike
        h.append(time_to_marker(hvm, o.timeout))
        q.append(time_to_marker(qemu, o.timeout))
    hm, qm = statistics.median(h), statistics.median(q)
    print(f"boot to init marker, -smp {o.smp}, median of {o.repeat} (min-max), seconds:")
    print(f"  hvm -accel {o.accel:4s} {hm:7.2f}  ({min(h):.2f}-{max(h):.2f})")
    print(f"  qemu {'tcg' if o.accel == 'emu' else 'kvm':10s} {qm:7.2f}  ({min(q):.2f}-{max(q):.2f})")
    print(f"  hvm/qemu = {hm / qm:.3f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"boot: {e}", file=sys.stderr)
        sys.exit(1)
