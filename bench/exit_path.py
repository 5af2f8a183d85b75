#!/usr/bin/env python3
"""Exit-path benchmark (issue: foundation). Three numbers from the same run, medians of --repeat:

  floor  bench/kvm_floor: a bare KVM_RUN loop, no device model, running pio_loop's exact loop
  hvm    build/hvm -accel kvm with tests/guests/pio_loop.elf
  qemu   qemu-system-x86_64 -accel kvm (-cpu host,-arch-capabilities) with the same guest

Each figure is ns per port-I/O exit (the guest's `out 0x80, al` loop), timed between the serial
markers pio_loop prints around the loop (VMM start-up and guest set-up are not counted). Prints
hvm/floor and hvm/qemu ratios. Run by hand, never by CTest:

  bench/exit_path.py --build build [--count 200000] [--repeat 5]
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "guests"))
from guest_bench import TINY_VM, time_between  # noqa: E402


def median_of(fn, repeat):
    values = [fn() for _ in range(repeat)]
    return statistics.median(values), min(values), max(values)


def floor_ns(binary, count):
    out = subprocess.run([binary, str(count)], check=True, capture_output=True, text=True).stdout
    # "kvm-floor: N exits in T s: X ns/exit"
    return float(out.split(":")[-1].split()[0])


def vmm_ns(cmd, count, timeout):
    t = time_between(cmd, rf"pio_loop: count={count}\r?\n", r"pio_loop: done", timeout)
    return t / count * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--no-qemu", action="store_true")
    o = ap.parse_args()
    guest = os.path.join(o.build, "tests", "guests", "pio_loop.elf")
    args = TINY_VM + ["-kernel", guest, "-append", f"count={o.count}"]
    rows = {}
    rows["floor"] = median_of(lambda: floor_ns(os.path.join(o.build, "bench", "kvm_floor"),
                                                o.count), o.repeat)
    rows["hvm"] = median_of(lambda: vmm_ns([os.path.join(o.build, "hvm"), "-accel", "kvm"] + args,
                                           o.count, o.timeout), o.repeat)
    if not o.no_qemu:
        qemu = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host,-arch-capabilities",
                "-M", "pc"] + args
        rows["qemu"] = median_of(lambda: vmm_ns(qemu, o.count, o.timeout), o.repeat)
    print(f"exit path, {o.count} port writes, median of {o.repeat} (min-max), ns per exit:")
    for k, (med, lo, hi) in rows.items():
        print(f"  {k:6s} {med:9.0f}  ({lo:.0f}-{hi:.0f})")
    print(f"  hvm/floor = {rows['hvm'][0] / rows['floor'][0]:.3f}")
    if "qemu" in rows:
        print(f"  hvm/qemu  = {rows['hvm'][0] / rows['qemu'][0]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
