# serial_hello: prints "hvm-guest: hello" on COM1 and exits with EXIT_SUCCESS (status 33).
.include "common.inc"

.section .text
.globl guest_main
guest_main:
    call uart_init
    movl $msg_hello, %esi
    call puts
    movb $EXIT_SUCCESS, %al
    ret

.section .rodata
msg_hello:
    .asciz "hvm-guest: hello\n"
