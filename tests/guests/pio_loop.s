# pio_loop: the exit-path benchmark guest. Executes `count` single `out` instructions to port 0x80
# (POST code port: every write is a VM exit on KVM), count from the command line "count=N"
# (default 1000000), then exits with EXIT_SUCCESS. Prints "pio_loop: count=N" before and
# "pio_loop: done" after, so a harness can time the loop alone from serial timestamps.
.include "common.inc"

.set DEFAULT_COUNT, 1000000
.set POST_PORT, 0x80

.section .text
.globl guest_main
guest_main:
    pushl %ebx
    call uart_init
    movl $key_count, %esi
    call cmdline_uint
    jnc 1f
    movl $DEFAULT_COUNT, %eax
1:  movl %eax, %ebx
    movl $msg_start, %esi
    call puts
    movl %ebx, %eax
    call put_dec
    call put_newline
    movl %ebx, %ecx
    xorb %al, %al
    testl %ecx, %ecx
    jz 3f
2:  outb %al, $POST_PORT
    incb %al
    decl %ecx
    jnz 2b
3:  movl $msg_done, %esi
    call puts
    movb $EXIT_SUCCESS, %al
    popl %ebx
    ret

.section .rodata
key_count:
    .asciz "count="
msg_start:
    .asciz "pio_loop: count="
msg_done:
    .asciz "pio_loop: done\n"
