# debug_exit: writes the value given on the command line as "exit=N" (decimal or 0x hex) to the
# isa-debug-exit port and nothing else: no UART, no other I/O. Tests the exit-status plumbing:
# the host status must be ((N << 1) | 1) & 0xff. Without "exit=" it writes EXIT_FAILURE.
.include "common.inc"

.section .text
.globl guest_main
guest_main:
    movl $key_exit, %esi
    call cmdline_uint
    jnc 1f
    movl $EXIT_FAILURE, %eax
1:  ret

.section .rodata
key_exit:
    .asciz "exit="
