#!/usr/bin/env python3
"""Guest-side benchmarks with the tests/guests images (run by hand, never by CTest):

  pio_loop  N `out` instructions to port 0x80: time per port-I/O exit (the exit path's cost).
  cpu_loop  N iterations of a 14-instruction register loop: guest instructions per second (what
            matters for -accel emu).

Each loop is timed on the host between two serial markers the guest prints right before and
right after it, so VMM start-up and guest set-up are not counted. Serial output arrives through
the VMM's stdout, which both hvm and QEMU write unbuffered.

  guest_bench.py --vmm build/hvm --guests build/tests/guests [--accel kvm|emu|tcg]
                 [--pio-count N] [--cpu-iters N] [--repeat R]

--vmm qemu runs qemu-system-x86_64 (for comparison). Prints one line per measurement and the best
of --repeat runs. Standard library only.
"""

import argparse
import os
import re
import selectors
import shutil
import subprocess
import sys
import time

TINY_VM = ["-m", "64", "-serial", "stdio", "-display", "none", "-no-reboot",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
SUCCESS_STATUS = 33
CPU_LOOP_INSNS_PER_ITER = 14


def time_between(cmd, start_re, end_re, timeout):
    """Runs cmd; returns seconds between the serial output matching start_re and end_re."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    text = ""
    t_start = t_end = None
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                raise RuntimeError(f"timeout after {timeout}s; output so far: {text[-200:]!r}")
            data = os.read(proc.stdout.fileno(), 4096)
            now = time.monotonic()
            if not data:
                break
            text += data.decode("utf-8", errors="replace")
            if t_start is None and re.search(start_re, text):
                t_start = now
            if t_start is not None and t_end is None and re.search(end_re, text):
                t_end = now
        status = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode("utf-8", errors="replace")
    if status != SUCCESS_STATUS or t_start is None or t_end is None:
        raise RuntimeError(f"guest failed (status {status}); serial {text[-200:]!r}; "
                           f"stderr {err[-300:]!r}")
    return t_end - t_start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vmm", default="hvm", help="hvm binary, or 'qemu'")
    ap.add_argument("--guests", required=True, help="directory with pio_loop.elf and cpu_loop.elf")
    ap.add_argument("--accel", default="kvm", help="kvm, emu (hvm) or tcg (QEMU)")
    ap.add_argument("--pio-count", type=int, default=1000000)
    ap.add_argument("--cpu-iters", type=int, default=10000000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600)
    opts = ap.parse_args()

    vmm = "qemu-system-x86_64" if opts.vmm == "qemu" else opts.vmm
    vmm = shutil.which(vmm) or vmm
    accel = opts.accel
    if "qemu" in os.path.basename(vmm) and accel == "emu":
        accel = "tcg"
    base = [vmm, "-accel", accel] + TINY_VM

    results = []
    if opts.pio_count > 0:
        cmd = base + ["-kernel", os.path.join(opts.guests, "pio_loop.elf"),
                      "-append", f"count={opts.pio_count}"]
        best = min(time_between(cmd, rf"pio_loop: count={opts.pio_count}\r?\n", r"pio_loop: done",
                                opts.timeout) for _ in range(opts.repeat))
        results.append(f"pio_loop: {opts.pio_count} exits in {best:.3f}s = "
                       f"{best / opts.pio_count * 1e9:.0f} ns/exit")
    if opts.cpu_iters > 0:
        cmd = base + ["-kernel", os.path.join(opts.guests, "cpu_loop.elf"),
                      "-append", f"iters={opts.cpu_iters}"]
        best = min(time_between(cmd, rf"cpu_loop: iters={opts.cpu_iters}", r"checksum=0x[0-9a-f]{8}",
                                opts.timeout) for _ in range(opts.repeat))
        insns = opts.cpu_iters * CPU_LOOP_INSNS_PER_ITER
        results.append(f"cpu_loop: {insns} instructions in {best:.3f}s = "
                       f"{insns / best / 1e6:.1f} M instructions/s")
    for line in results:
        print(f"{os.path.basename(vmm)} -accel {accel}: {line}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"guest_bench: {e}", file=sys.stderr)
        sys.exit(1)
