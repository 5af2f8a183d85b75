# pit_irq: PIT channel 0 in mode 2 at ~1000 Hz through the 8259 pair (IRQ0 -> vector 0x20), the
# path of a legacy (non-APIC) kernel. Waits with sti;hlt until 10 ticks, prints "pit ticks: 10",
# exits with EXIT_SUCCESS. The handler masks IRQ0 on the 10th tick so the printed count is exact.
# Works with the in-kernel PIC/PIT and with the device-model ones (kernel-irqchip=off).
.include "common.inc"

.set TARGET_TICKS, 10

.section .text
.globl guest_main
guest_main:
    call uart_init
    movl $msg_start, %esi
    call puts
    call idt_init
    call lapic_enable
    call lapic_virtual_wire
    movl $PIC1_VECTOR_BASE + 0, %eax
    movl $pit_isr, %edx
    call idt_set_gate
    movb $0xfe, %al              # master: only IRQ0
    movb $0xff, %ah              # slave: nothing
    call pic_init
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
    ret

pit_isr:
    incl ticks
    cmpl $TARGET_TICKS, ticks
    jb 1f
    movb $0xff, %al              # done: mask IRQ0 so no further tick is counted
    outb %al, $PIC1_DATA
1:  movb $PIC_OCW2_EOI, %al
    outb %al, $PIC1_CMD
    jmp irq_return

.section .rodata
msg_start:
    .asciz "pit_irq: PIT mode 2 at 1000 Hz via 8259 IRQ0\n"
msg_ticks:
    .asciz "pit ticks: "

.section .bss
.align 4
ticks:
    .long 0
