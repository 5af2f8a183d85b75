# cpu_loop: CPU-bound guest for measuring emulator speed. Runs `iters` iterations (command line
# "iters=N", default 1000000) of a register-only loop (xorshift32, multiply, rotate, add: 14
# instructions per iteration, no memory or I/O) and prints "cpu_loop: iters=N checksum=0x...".
# The checksum is deterministic, so any engine must print the same value for the same N
# (tests/integration computes the expected value).
.include "common.inc"

.set DEFAULT_ITERS, 1000000

.section .text
.globl guest_main
guest_main:
    pushl %ebx
    pushl %esi
    pushl %edi
    call uart_init
    movl $key_iters, %esi
    call cmdline_uint
    jnc 1f
    movl $DEFAULT_ITERS, %eax
1:  movl %eax, %edi
    movl $msg_start, %esi
    call puts
    movl %edi, %eax
    call put_dec
    movl %edi, %ecx
    movl $0x12345678, %ebx       # xorshift32 state
    xorl %esi, %esi              # checksum
    testl %ecx, %ecx
    jz 3f
2:  movl %ebx, %eax              # x ^= x << 13; x ^= x >> 17; x ^= x << 5
    shll $13, %eax
    xorl %eax, %ebx
    movl %ebx, %eax
    shrl $17, %eax
    xorl %eax, %ebx
    movl %ebx, %eax
    shll $5, %eax
    xorl %eax, %ebx
    imull $0x9e3779b1, %ebx, %eax # sum = rol(sum, 5) + x * golden
    roll $5, %esi
    addl %eax, %esi
    decl %ecx
    jnz 2b
3:  movl %esi, %edi
    movl $msg_sum, %esi
    call puts
    movl %edi, %eax
    call put_hex32
    call put_newline
    movb $EXIT_SUCCESS, %al
    popl %edi
    popl %esi
    popl %ebx
    ret

.section .rodata
key_iters:
    .asciz "iters="
msg_start:
    .asciz "cpu_loop: iters="
msg_sum:
    .asciz " checksum="
