#!/usr/bin/env python3
"""Runs one guest under a VMM (hvm, or QEMU for validation) and checks what it does.

    run_guest.py [checks] -- VMM-ARGUMENTS...

The VMM's stdout is the guest's serial console (-serial stdio). It is logged to --log as it
arrives and matched against the --expect patterns in order; --send/--send-line write to the
guest's serial input once every pattern before them has matched. When the VMM exits, its exit
status and stderr are checked. One line says the verdict:

    PASS <name>: <what was seen> (<seconds>s)          exit code 0
    FAIL <name>: <reason> (<seconds>s)                 exit code 1, then the command, the tail
                                                       of the serial log and of stderr
    SKIP <name>: <reason>                              exit code 77 (CTest: SKIP_RETURN_CODE 77)

Which VMM runs: --vmm PATH (CTest passes hvm's), overridden by the environment variable
HVM_TEST_VMM: "qemu" (qemu-system-x86_64 from PATH) or a path. A VMM whose file name contains
"qemu" runs in QEMU mode: "-accel kvm|emu" become "-accel $HVM_TEST_QEMU_ACCEL" (default tcg),
and the --qemu-* options replace their hvm counterparts where QEMU behaves differently by design
(e.g. QEMU exits 0 on a triple fault with -no-reboot, hvm reports it and fails).

Standard library only.
"""

import argparse
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time

SKIP_CODE = 77
LOG_TAIL_LINES = 40
STDERR_TAIL_LINES = 20
REJECT_GRACE = 1.0  # seconds of output still collected after a --reject pattern matched


class Verdict(Exception):
    """Raised to end the run with a verdict line."""

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def parse_exit_spec(text):
    """'N' (0-255), 'nonzero', 'any' or 'none' (do not wait for an exit: stop the VMM once every
    pattern matched)."""
    if text in ("nonzero", "any", "none"):
        return text
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad exit status '{text}'") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"exit status {value} is not in 0..255")
    return value


def parse_lines_spec(text):
    if text == "any":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad line count '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError("line count must be >= 0")
    return value


def compile_regex(text):
    try:
        return re.compile(text, re.MULTILINE)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"bad regular expression '{text}': {e}") from None


class StepAction(argparse.Action):
    """Keeps --expect/--send/--send-line in command-line order in one list."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = getattr(namespace, "steps", None) or []
        if option_string == "--expect":
            try:
                steps.append(("expect", compile_regex(values)))
            except argparse.ArgumentTypeError as e:
                parser.error(str(e))
        elif option_string == "--send":
            steps.append(("send", values))
        else:
            steps.append(("send", values + "\n"))
        namespace.steps = steps


def build_parser():
    p = argparse.ArgumentParser(
        description="Run a guest under hvm or QEMU and check its serial output and exit status.",
        usage="%(prog)s [options] -- VMM-ARGUMENTS...",
    )
    p.add_argument("--name", help="test name for the verdict line")
    p.add_argument("--vmm", default="hvm", help="VMM binary (overridden by $HVM_TEST_VMM)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before FAIL (60)")
    p.add_argument("--log", help="serial log file (stderr goes to LOG.stderr)")
    p.add_argument("--expect", action=StepAction, metavar="REGEX",
                   help="next pattern to wait for on the serial output (ordered, repeatable)")
    p.add_argument("--send", action=StepAction, metavar="TEXT",
                   help="write TEXT to the serial input once the patterns before it matched")
    p.add_argument("--send-line", action=StepAction, metavar="TEXT",
                   help="like --send, with a newline appended")
    p.add_argument("--reject", type=compile_regex, action="append", default=[], metavar="REGEX",
                   help="FAIL as soon as this appears on the serial output or stderr")
    p.add_argument("--exit", dest="exit_status", type=parse_exit_spec, default=0,
                   help="expected exit status: N, nonzero, any, or none (default 0)")
    p.add_argument("--stderr", type=compile_regex, action="append", default=None,
                   metavar="REGEX", help="pattern that must appear on stderr (repeatable)")
    p.add_argument("--stderr-lines", type=parse_lines_spec, default=None, metavar="N",
                   help="stderr must have exactly N non-empty lines besides '<prog>: warning: "
                        "...' lines ('any' to not check)")
    p.add_argument("--require-file", action="append", default=[], metavar="PATH",
                   help="SKIP when PATH does not exist (e.g. an image not built yet)")
    p.add_argument("--require-hw-kvm", action="store_true",
                   help="SKIP when not QEMU mode and KVM is not hardware-backed (no vmx/svm)")
    p.add_argument("--qemu-exit", type=parse_exit_spec, default=None,
                   help="replaces --exit in QEMU mode")
    p.add_argument("--qemu-stderr", type=compile_regex, action="append", default=None,
                   metavar="REGEX", help="replaces --stderr in QEMU mode")
    p.add_argument("--qemu-stderr-lines", type=parse_lines_spec, default=None, metavar="N",
                   help="replaces --stderr-lines in QEMU mode ('any' to not check)")
    p.add_argument("--qemu-arg", action="append", default=[], metavar="ARG",
                   help="extra VMM argument in QEMU mode only (e.g. -d cpu_reset)")
    p.add_argument("vmm_args", nargs=argparse.REMAINDER, help="the VMM's arguments, after --")
    return p


def resolve_vmm(default):
    """Returns (path, is_qemu)."""
    chosen = os.environ.get("HVM_TEST_VMM") or default
    if chosen == "qemu":
        chosen = "qemu-system-x86_64"
    path = chosen
    if os.sep not in chosen:
        path = shutil.which(chosen) or chosen
    return path, "qemu" in os.path.basename(path)


def translate_for_qemu(args):
    """hvm and QEMU share the command line; only the accelerator differs: QEMU validates with TCG
    by default (this machine's KVM emulates every instruction and cannot run Linux)."""
    accel = os.environ.get("HVM_TEST_QEMU_ACCEL", "tcg")
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-accel", "--accel") and i + 1 < len(args):
            value = args[i + 1]
            if value.split(",")[0] in ("kvm", "emu"):
                value = accel
            out += [a, value]
            i += 2
            continue
        if a in ("-enable-kvm", "--enable-kvm"):
            out += ["-accel", accel]
        else:
            out.append(a)
        i += 1
    return out


def kvm_is_hardware_backed():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" in flags or "svm" in flags
    except OSError:
        return False
    return False


def tail(text, lines):
    parts = text.rstrip("\n").split("\n")
    return "\n".join(parts[-lines:]) if text.strip() else "(empty)"


def check_exit(spec, status):
    """Returns None when `status` (Popen returncode) matches `spec`, else the reason."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = str(-status)
        return f"VMM was killed by signal {name}"
    if spec == "any":
        return None
    if spec == "nonzero":
        return None if status != 0 else "exit status 0, expected non-zero"
    if status != spec:
        return f"exit status {status}, expected {spec}"
    return None


class GuestRun:
    def __init__(self, opts, vmm, is_qemu, args):
        self.opts = opts
        self.vmm = vmm
        self.is_qemu = is_qemu
        self.cmd = [vmm] + args
        self.steps = list(getattr(opts, "steps", None) or [])
        self.serial = ""
        self.stderr = ""
        self.scan_pos = 0
        self.matched = []
        self.proc = None
        self.log = None
        self.log_err = None
        self.status = None
        self.rejected = None  # (reason, fail-at time) once a --reject pattern matched
        self.start = time.monotonic()

    # -- output handling -------------------------------------------------------------------
    def feed(self, which, data):
        text = data.decode("utf-8", errors="replace")
        if which == "out":
            self.serial += text
            if self.log:
                self.log.write(data)
                self.log.flush()
        else:
            self.stderr += text
            if self.log_err:
                self.log_err.write(data)
                self.log_err.flush()
        if self.rejected is None:
            for r in self.opts.reject:
                m = r.search(self.serial) or r.search(self.stderr)
                if m:
                    # Fail after a short grace period, so the rest of the guest's message (and
                    # the VMM's exit) are in the log too.
                    self.rejected = (f"rejected pattern /{r.pattern}/ appeared: "
                                     f"{m.group(0)!r}", time.monotonic() + REJECT_GRACE)
                    break

    def advance(self):
        """Runs every step that can run now. Returns True when all steps are done."""
        while self.steps:
            kind, value = self.steps[0]
            if kind == "expect":
                m = value.search(self.serial, self.scan_pos)
                if not m:
                    return False
                self.scan_pos = m.end()
                self.matched.append(m.group(0).strip())
            else:
                try:
                    self.proc.stdin.write(value.encode())
                    self.proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    raise Verdict("FAIL", f"could not send {value!r}: the VMM closed its input")
            self.steps.pop(0)
        return True

    def pending(self):
        for kind, value in self.steps:
            if kind == "expect":
                return f"/{value.pattern}/"
        return None

    # -- process ---------------------------------------------------------------------------
    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()

    def run(self):
        opts = self.opts
        if opts.log:
            os.makedirs(os.path.dirname(os.path.abspath(opts.log)), exist_ok=True)
            self.log = open(opts.log, "wb")
            self.log_err = open(opts.log + ".stderr", "wb")
        try:
            self.proc = subprocess.Popen(
                self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True)
        except OSError as e:
            raise Verdict("FAIL", f"cannot start {self.vmm}: {e.strerror}")
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ, "out")
        sel.register(self.proc.stderr, selectors.EVENT_READ, "err")
        deadline = self.start + opts.timeout
        open_streams = 2
        done = self.advance()
        while open_streams:
            if done and opts.exit_status == "none":
                self.stop()
                return
            if self.rejected and time.monotonic() >= self.rejected[1]:
                raise Verdict("FAIL", self.rejected[0])
            remaining = deadline - time.monotonic()
            if self.rejected:
                remaining = min(remaining, self.rejected[1] - time.monotonic())
            if remaining <= 0 and not self.rejected:
                waiting = self.pending()
                if waiting:
                    raise Verdict("FAIL", f"timeout after {opts.timeout:g}s waiting for {waiting}")
                raise Verdict("FAIL", f"timeout after {opts.timeout:g}s: the VMM did not exit")
            for key, _ in sel.select(timeout=max(0.0, min(remaining, 0.5))):
                data = os.read(key.fileobj.fileno(), 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    continue
                self.feed(key.data, data)
                if not self.rejected:
                    done = self.advance()
        # Both streams closed: the VMM is exiting.
        try:
            status = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Verdict("FAIL", "the VMM closed its output but did not exit")
        self.check_end(status)

    def check_end(self, status):
        opts = self.opts
        if self.rejected:
            raise Verdict("FAIL", self.rejected[0])
        waiting = self.pending()
        if waiting:
            raise Verdict("FAIL", f"VMM exited (status {status}) before {waiting} appeared")
        exit_spec = opts.exit_status
        stderr_res = opts.stderr or []
        stderr_lines = opts.stderr_lines
        if self.is_qemu:
            if opts.qemu_exit is not None:
                exit_spec = opts.qemu_exit
            if opts.qemu_stderr is not None:
                stderr_res = opts.qemu_stderr
            if opts.qemu_stderr_lines is not None:
                stderr_lines = opts.qemu_stderr_lines
        if exit_spec != "none":
            why = check_exit(exit_spec, status)
            if why:
                raise Verdict("FAIL", why)
        for r in stderr_res:
            if not r.search(self.stderr):
                raise Verdict("FAIL", f"stderr lacks /{r.pattern}/")
        if stderr_lines not in (None, "any"):
            # Warnings ("<program>: warning: ...", QEMU's convention, e.g. CPUID features the
            # host lacks) are not part of the error report being checked.
            lines = [line for line in self.stderr.splitlines()
                     if line.strip() and ": warning: " not in line]
            n = len(lines)
            if n != stderr_lines:
                raise Verdict("FAIL", f"stderr has {n} non-empty lines, expected {stderr_lines}")
        self.status = status

    def summary(self):
        seen = "; ".join(repr(m) for m in self.matched[:4])
        if len(self.matched) > 4:
            seen += f"; ... ({len(self.matched)} patterns)"
        status = self.status
        parts = []
        if seen:
            parts.append(f"saw {seen}")
        if status is not None:
            parts.append(f"exit status {status}")
        return ", ".join(parts) or "done"

    def close(self):
        self.stop()
        for f in (self.log, self.log_err):
            if f:
                f.close()
        if self.proc and self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


def main(argv):
    parser = build_parser()
    opts = parser.parse_args(argv)
    args = opts.vmm_args
    if args and args[0] == "--":
        args = args[1:]
    name = opts.name or "guest"
    vmm, is_qemu = resolve_vmm(opts.vmm)
    if is_qemu:
        args = translate_for_qemu(args) + opts.qemu_arg

    def verdict(kind, reason, elapsed=None):
        suffix = f" ({elapsed:.1f}s)" if elapsed is not None else ""
        print(f"{kind} {name}: {reason}{suffix}", flush=True)
        return {"PASS": 0, "FAIL": 1, "SKIP": SKIP_CODE}[kind]

    for path in opts.require_file:
        if not os.path.exists(path):
            return verdict("SKIP", f"{path} does not exist (build it first, e.g. "
                                   f"images/build-guest.sh)")
    if opts.require_hw_kvm and not is_qemu and not kvm_is_hardware_backed():
        return verdict("SKIP", "*** KVM on this machine is not hardware-backed (no vmx/svm in "
                               "/proc/cpuinfo): this test needs -accel kvm on VT-x/AMD-V; run it "
                               "against QEMU with HVM_TEST_VMM=qemu ***")
    if os.sep in vmm and not os.access(vmm, os.X_OK):
        return verdict("FAIL", f"VMM binary {vmm} does not exist or is not executable "
                               f"(build the hvm target, or set HVM_TEST_VMM=qemu)")

    run = GuestRun(opts, vmm, is_qemu, args)
    try:
        run.run()
        code = verdict("PASS", run.summary(), time.monotonic() - run.start)
    except Verdict as v:
        run.close()
        code = verdict(v.kind, v.reason, time.monotonic() - run.start)
        if v.kind == "FAIL":
            print("  command: " + " ".join(run.cmd))
            if opts.log:
                print(f"  serial log: {opts.log}")
            print(f"  --- serial output, last {LOG_TAIL_LINES} lines ---")
            print(tail(run.serial, LOG_TAIL_LINES))
            print(f"  --- stderr, last {STDERR_TAIL_LINES} lines ---")
            print(tail(run.stderr, STDERR_TAIL_LINES), flush=True)
    finally:
        run.close()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
