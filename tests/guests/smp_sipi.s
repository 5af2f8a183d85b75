# smp_sipi: starts the second CPU the way an MP-spec OS does (MP spec B.4, SDM 8.4.4.1): the BSP
# copies a real-mode trampoline to 0x8000 (below 1 MiB, 4 KiB aligned: SIPI vector 0x08 starts
# the AP at CS:IP = 0800:0000), then sends INIT assert, INIT de-assert and STARTUP to APIC ID 1 via
# the LAPIC ICR. The AP switches to protected mode, records its APIC ID, increments ap_count with
# a locked add and halts. The BSP waits (bounded) and prints "ap started: 1" and "ap apic id: 1".
# Run with -smp 2.
.include "common.inc"

.set TRAMPOLINE, 0x8000
.set SIPI_VECTOR, TRAMPOLINE >> 12
.set AP_APIC_ID, 1
.set WAIT_LOOPS, 0x2000000   # ~100 ms under TCG: only reached when the AP never starts

.section .text
.globl guest_main
guest_main:
    pushl %ebx
    pushl %esi
    pushl %edi
    call uart_init
    movl $msg_start, %esi
    call puts
    call lapic_enable
    movl $ap_trampoline, %esi
    movl $TRAMPOLINE, %edi
    movl $(ap_trampoline_end - ap_trampoline), %ecx
    rep movsb
    movl $(AP_APIC_ID << 24), LAPIC_ICR_HI
    movl $LAPIC_ICR_INIT_ASSERT, %eax
    call send_ipi
    movl $LAPIC_ICR_INIT_DEASSERT, %eax
    call send_ipi
    movl $(LAPIC_ICR_STARTUP | SIPI_VECTOR), %eax
    call send_ipi
    movl $WAIT_LOOPS, %ecx
1:  cmpl $0, ap_count
    jne 2f
    pause
    decl %ecx
    jnz 1b
2:  movl ap_count, %ebx
    movl $msg_started, %esi
    call puts
    movl %ebx, %eax
    call put_dec
    call put_newline
    cmpl $1, %ebx
    jne 3f
    movl $msg_apic_id, %esi
    call puts
    movl ap_apic_id, %eax
    shrl $24, %eax
    call put_dec
    call put_newline
    movb $EXIT_SUCCESS, %al
    jmp 4f
3:  movb $EXIT_FAILURE, %al
4:  popl %edi
    popl %esi
    popl %ebx
    ret

# send_ipi(EAX = ICR low word): writing ICR low sends the IPI; then wait (bounded) for the
# delivery status bit to clear.
send_ipi:
    movl %eax, LAPIC_ICR_LO
    movl $0x100000, %ecx
1:  testl $LAPIC_ICR_BUSY, LAPIC_ICR_LO
    jz 2f
    pause
    decl %ecx
    jnz 1b
2:  ret

# The AP's real-mode entry, copied to TRAMPOLINE. Position independent: only offsets from its
# start are used in 16-bit mode; the GDT and the 32-bit entry are absolute (above 1 MiB).
.code16
ap_trampoline:
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    lgdtl ap_gdtr - ap_trampoline   # 32-bit operand size: the full 32-bit GDT base
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $SEL_CODE32, $ap_entry32
.align 4
ap_gdtr:
    .word 23                      # gdt in lib.s: three descriptors
    .long gdt
ap_trampoline_end:

.code32
ap_entry32:
    movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl LAPIC_ID, %eax
    movl %eax, ap_apic_id
    lock incl ap_count
1:  cli
    hlt
    jmp 1b

.section .rodata
msg_start:
    .asciz "smp_sipi: INIT/SIPI to APIC ID 1, trampoline at 0x8000\n"
msg_started:
    .asciz "ap started: "
msg_apic_id:
    .asciz "ap apic id: "

.section .bss
.align 4
ap_count:
    .long 0
ap_apic_id:
    .long 0
