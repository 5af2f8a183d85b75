# triple_fault: announces itself, loads an IDT with limit 0 and executes ud2. Vector 6 (#UD) lies
# outside the IDT -> #GP; #GP's gate lies outside too -> #DF; #DF's as well -> shutdown (triple
# fault, SDM 6.15 "Interrupt 8"). With -no-reboot QEMU exits with status 0; hvm must print its
# diagnosis ("triple fault") on stderr and exit non-zero. Reaching the line after ud2 is a failure.
# (ud2 rather than int3: the KVM this project runs on cannot emulate INT3, see lib.s.)
.include "common.inc"

.section .text
.globl guest_main
guest_main:
    call uart_init
    movl $msg_start, %esi
    call puts
    lidt empty_idtr
    ud2
    movl $msg_survived, %esi
    call puts
    movb $EXIT_FAILURE, %al
    ret

.section .rodata
msg_start:
    .asciz "triple_fault: IDT limit 0, executing ud2\n"
msg_survived:
    .asciz "triple_fault: FAILED: execution continued after ud2\n"

.section .data
.align 4
    .word 0
empty_idtr:
    .word 0
    .long 0
