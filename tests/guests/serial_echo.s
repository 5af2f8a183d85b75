# serial_echo: prints the prompt "echo> ", reads 5 characters from COM1 (polling LSR.DR), prints
# them back upper-cased as "echo: XXXXX" and exits with EXIT_SUCCESS. Exercises the UART receive
# path: RBR, LSR.DR and the host input backend.
.include "common.inc"

.set ECHO_LEN, 5

.section .text
.globl guest_main
guest_main:
    pushl %ebx
    call uart_init
    movl $msg_prompt, %esi
    call puts
    xorl %ebx, %ebx
1:  call getc
    cmpb $'a', %al
    jb 2f
    cmpb $'z', %al
    ja 2f
    subb $('a' - 'A'), %al
2:  movb %al, line(%ebx)
    incl %ebx
    cmpl $ECHO_LEN, %ebx
    jb 1b
    movl $msg_echo, %esi
    call puts
    movl $line, %esi
    call puts
    call put_newline
    movb $EXIT_SUCCESS, %al
    popl %ebx
    ret

.section .rodata
msg_prompt:
    .asciz "echo> "
msg_echo:
    .asciz "\necho: "

.section .bss
line:
    .skip ECHO_LEN + 1   # NUL-terminated by the .bss clearing
