# rtc_irq: MC146818 periodic interrupt at 1024 Hz (register A RS=6, register B PIE) through the
# slave 8259 (IRQ8 -> vector 0x28, cascaded on master IR2). The handler reads register C, which
# acknowledges the interrupt and lowers IRQ8. After 8 interrupts whose register C shows IRQF and
# PF, prints "rtc ticks: 8" and exits with EXIT_SUCCESS.
#
# An interrupt may legitimately find register C empty: when a periodic edge comes between the
# 8259's INTA and the handler's read of C (or between set-up setting PIE and reading C), that one
# read acknowledges both, but the 8259 (QEMU's, KVM's and hvm's models; edge mode) has already
# latched the second rising edge in its IRR and delivers it later. Such interrupts are counted
# apart, not as ticks; more than EMPTY_LIMIT of them, or a register C with only one of IRQF/PF,
# is a failure.
.include "common.inc"

.set TARGET_TICKS, 8
.set EMPTY_LIMIT, 16

.section .text
.globl guest_main
guest_main:
    call uart_init
    movl $msg_start, %esi
    call puts
    call idt_init
    call lapic_enable
    call lapic_virtual_wire
    movl $PIC2_VECTOR_BASE + 0, %eax
    movl $rtc_isr, %edx
    call idt_set_gate
    movb $0xfb, %al              # master: only the cascade input IR2
    movb $0xfe, %ah              # slave: only IRQ8
    call pic_init
    movb $RTC_REG_A, %al
    outb %al, $RTC_INDEX
    movb $RTC_A_32KHZ_1024HZ, %al
    outb %al, $RTC_DATA
    movb $RTC_REG_B, %al
    outb %al, $RTC_INDEX
    inb $RTC_DATA, %al
    orb $RTC_B_PIE, %al
    movb %al, %ah
    movb $RTC_REG_B, %al
    outb %al, $RTC_INDEX
    movb %ah, %al
    outb %al, $RTC_DATA
    movb $RTC_REG_C, %al         # drop any flag raised before we were ready
    outb %al, $RTC_INDEX
    inb $RTC_DATA, %al
    movl $ticks, %eax
    movl $TARGET_TICKS, %edx
    call wait_irqs
    cmpl $0, bad_count
    jne 3f
    cmpl $0, empty_count
    je 2f
    movl $msg_empty, %esi
    call puts
    movl empty_count, %eax
    call put_dec
    call put_newline
2:  movl $msg_ticks, %esi
    call puts
    movl ticks, %eax
    call put_dec
    call put_newline
    movb $EXIT_SUCCESS, %al
    ret
3:  movl $msg_bad, %esi
    call puts
    movl bad_tick, %eax
    call put_dec
    movl $msg_bad_c, %esi
    call puts
    movl bad_reg_c, %eax
    call put_hex32
    movl $msg_bad_counts, %esi
    call puts
    movl bad_count, %eax
    call put_dec
    movb $'/', %al
    call putc
    movl empty_count, %eax
    call put_dec
    call put_newline
    movb $EXIT_FAILURE, %al
    ret

rtc_isr:
    movb $RTC_REG_C, %al
    outb %al, $RTC_INDEX
    inb $RTC_DATA, %al
    movzbl %al, %edx
    andb $(RTC_C_IRQF | RTC_C_PF), %al
    cmpb $(RTC_C_IRQF | RTC_C_PF), %al
    je 1f
    testb %al, %al
    jnz 3f
    incl empty_count             # acknowledged by an earlier read of C (see the top)
    cmpl $EMPTY_LIMIT, empty_count
    jbe 2f
3:  cmpl $0, bad_count          # remember the first bad one for the report
    jne 4f
    movl %edx, bad_reg_c
    movl ticks, %eax
    movl %eax, bad_tick
4:  incl bad_count              # counted as a tick too, so a broken RTC still ends the test
1:  incl ticks
    cmpl $TARGET_TICKS, ticks
    jb 2f
    movb $0xff, %al              # done: mask IRQ8
    outb %al, $PIC2_DATA
2:  movb $PIC_OCW2_EOI, %al
    outb %al, $PIC2_CMD
    outb %al, $PIC1_CMD
    jmp irq_return

.section .rodata
msg_start:
    .asciz "rtc_irq: RTC periodic 1024 Hz via slave 8259 IRQ8\n"
msg_ticks:
    .asciz "rtc ticks: "
msg_empty:
    .asciz "rtc_irq: interrupts with register C already acknowledged: "
msg_bad:
    .asciz "rtc_irq: FAILED: bad register C after tick "
msg_bad_c:
    .asciz ": "
msg_bad_counts:
    .asciz "; bad/empty interrupts: "

.section .bss
.align 4
ticks:
    .long 0
bad_count:
    .long 0
empty_count:
    .long 0
bad_tick:
    .long 0
bad_reg_c:
    .long 0
