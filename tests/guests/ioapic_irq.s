# ioapic_irq: the PIT test through the I/O APIC, the path Linux uses: both 8259s remapped and fully
# masked, LAPIC software-enabled with LINT0 masked, IOAPIC pin 2 (ISA IRQ0 after the pc machine's
# interrupt source override) -> vector 0x30, fixed delivery, edge, active high, physical
# destination = this CPU's APIC ID. EOI goes to the LAPIC. After 10 ticks the handler masks the
# pin; prints "ioapic ticks: 10" and exits with EXIT_SUCCESS.
.include "common.inc"

.set TARGET_TICKS, 10
.set PIT_PIN, 2
.set VECTOR, 0x30

.section .text
.globl guest_main
guest_main:
    pushl %ebx
    call uart_init
    movl $msg_start, %esi
    call puts
    call idt_init
    movb $0xff, %al
    movb $0xff, %ah
    call pic_init
    call lapic_enable
    movl $(LAPIC_LVT_MASKED | LAPIC_DM_EXTINT), LAPIC_LVT_LINT0
    movl $VECTOR, %eax
    movl $ioapic_isr, %edx
    call idt_set_gate
    movl LAPIC_ID, %ebx          # APIC ID in bits 31:24, as the RTE destination field wants
    andl $0xff000000, %ebx
    movl $(IOAPIC_REDTBL + 2 * PIT_PIN + 1), IOAPIC_REGSEL
    movl %ebx, IOAPIC_WIN
    movl $(IOAPIC_REDTBL + 2 * PIT_PIN), IOAPIC_REGSEL
    movl $VECTOR, IOAPIC_WIN
    # Read the entry back: vector and mask must be what we wrote (delivery status and remote IRR
    # are the IOAPIC's own bits, so they are not compared).
    movl IOAPIC_WIN, %eax
    andl $(IOAPIC_RTE_MASKED | 0xff), %eax
    cmpl $VECTOR, %eax
    jne 3f
    movb $PIT_CH0_LOHI_MODE2, %al
    outb %al, $PIT_MODE
    movb $(PIT_HZ_1000_DIVISOR & 0xff), %al
    outb %al, $PIT_CH0
    movb $(PIT_HZ_1000_DIVISOR >> 8), %al
    outb %al, $PIT_CH0
    movl $ticks, %eax
    movl $TARGET_TICKS, %edx
    call wait_irqs
    movl $msg_ticks, %esi
    call puts
    movl ticks, %eax
    call put_dec
    call put_newline
    movb $EXIT_SUCCESS, %al
    popl %ebx
    ret
3:  movl %eax, %ebx
    movl $msg_readback, %esi
    call puts
    movl %ebx, %eax
    call put_hex32
    call put_newline
    movb $EXIT_FAILURE, %al
    popl %ebx
    ret

ioapic_isr:
    incl ticks
    cmpl $TARGET_TICKS, ticks
    jb 1f
    movl $(IOAPIC_REDTBL + 2 * PIT_PIN), IOAPIC_REGSEL
    movl $(IOAPIC_RTE_MASKED | VECTOR), IOAPIC_WIN
1:  movl $0, LAPIC_EOI
    jmp irq_return

.section .rodata
msg_start:
    .asciz "ioapic_irq: PIT mode 2 at 1000 Hz via IOAPIC pin 2\n"
msg_ticks:
    .asciz "ioapic ticks: "
msg_readback:
    .asciz "ioapic_irq: FAILED: redirection entry 2 reads back as "

.section .bss
.align 4
ticks:
    .long 0
