#!/usr/bin/env python3
"""Prints the checksum tests/guests/cpu_loop.s computes for N iterations (default 100000), the
value tests/integration/CMakeLists.txt expects: cpu_loop_checksum.py [N]."""
import sys

MASK = 0xFFFFFFFF


def checksum(iters):
    x, s = 0x12345678, 0
    for _ in range(iters):
        x ^= (x << 13) & MASK
        x ^= x >> 17
        x ^= (x << 5) & MASK
        s = ((s << 5) | (s >> 27)) & MASK
        s = (s + x * 0x9E3779B1) & MASK
    return s


if __name__ == "__main__":
    n = int(sys.argv[1], 0) if len(sys.argv) > 1 else 100000
    print(f"0x{checksum(n):08x}")
