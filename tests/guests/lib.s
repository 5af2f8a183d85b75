# Runtime shared by the hvm test guests: multiboot v1 header and entry, GDT, IDT with a default
# handler for every vector, COM1 output/input, number printing, multiboot command-line parsing,
# PIC/LAPIC set-up helpers and the debug-exit.
#
# Calling convention of every routine here: arguments in EAX/EDX/ESI as documented, result in EAX;
# EBX, ESI, EDI, EBP and ESP are preserved unless stated; ECX and EDX may be clobbered.
#
# Each guest provides `guest_main`, entered in 32-bit flat protected mode with a stack and
# interrupts disabled; it returns the debug-exit value in AL.
#
# Interrupts are only ever enabled inside wait_irqs, on its STI;HLT, and handlers end with
# `jmp irq_return` instead of IRET. The KVM of the machines this project runs on executes guest
# code in KVM's instruction emulator, which has no protected-mode IRET or INT3 (QEMU reports
# "KVM internal error. Suberror: 1 ... emulation failure"); this keeps every guest runnable there.

.include "common.inc"

# ---------------------------------------------------------------------------------------------
# Multiboot header: must lie 4-byte aligned in the first 8 KiB of the file. Flags 0: the guest
# needs neither aligned modules nor the memory map, so a loader has nothing optional to provide.
.section .multiboot, "a"
.align 4
    .long MULTIBOOT_HEADER_MAGIC
    .long 0
    .long -MULTIBOOT_HEADER_MAGIC

.section .text
.code32
.globl _start
_start:
    # Multiboot state: EAX = magic, EBX = info, CS/DS flat, no stack, GDTR possibly stale
    # (spec 3.2: "the OS image must create its own GDT"). Interrupts must be off.
    cli
    cld
    movl %eax, %ebp
    movl %ebx, %esi
    lgdt gdtr
    ljmp $SEL_CODE32, $1f
1:  movw $SEL_DATA32, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    # Zero .bss ourselves: the result must not depend on how a loader treats p_memsz.
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    movl $stack_top, %esp
    movl %esi, mb_info
    cmpl $MULTIBOOT_LOADER_MAGIC, %ebp
    jne bad_magic
    call guest_main
    jmp debug_exit

bad_magic:
    movl $msg_bad_magic, %esi
    call puts
    movl %ebp, %eax
    call put_hex32
    call put_newline
    movb $EXIT_FAILURE, %al
    jmp debug_exit

# debug_exit(AL = value): the host exits with status (value << 1) | 1. Does not return.
.globl debug_exit
debug_exit:
    cli
    outb %al, $DEBUG_EXIT_PORT
    # Still running: the VMM has no isa-debug-exit at 0xF4. Stop here; the runner times out.
2:  hlt
    jmp 2b

# ---------------------------------------------------------------------------------------------
# COM1

# uart_init(): 115200 8N1, FIFOs on, UART interrupts off. QEMU's and hvm's 16550 transmit without
# this, but a guest must not rely on reset values it never set.
.globl uart_init
uart_init:
    movw $UART_IER, %dx
    xorb %al, %al
    outb %al, %dx
    movw $UART_LCR, %dx
    movb $UART_LCR_DLAB, %al
    outb %al, %dx
    movw $UART_DLL, %dx
    movb $1, %al
    outb %al, %dx
    movw $UART_DLM, %dx
    xorb %al, %al
    outb %al, %dx
    movw $UART_LCR, %dx
    movb $UART_LCR_8N1, %al
    outb %al, %dx
    movw $UART_FCR, %dx
    movb $UART_FCR_ENABLE_CLEAR, %al
    outb %al, %dx
    movw $UART_MCR, %dx
    movb $UART_MCR_DTR_RTS, %al
    outb %al, %dx
    ret

# putc(AL = character). "\n" is sent as "\r\n". Waits for LSR.THRE, at most 65536 polls (as
# Linux's early console does), then transmits anyway.
.globl putc
putc:
    cmpb $'\n', %al
    jne 1f
    pushl %eax
    movb $'\r', %al
    call putc_raw
    popl %eax
1:  jmp putc_raw

putc_raw:
    pushl %eax
    movw $UART_LSR, %dx
    movl $0x10000, %ecx
1:  inb %dx, %al
    testb $UART_LSR_THRE, %al
    jnz 2f
    decl %ecx
    jnz 1b
2:  popl %eax
    movw $UART_THR, %dx
    outb %al, %dx
    ret

# getc() -> AL: waits (unbounded: the runner's timeout bounds it) for LSR.DR, reads RBR.
.globl getc
getc:
    movw $UART_LSR, %dx
1:  inb %dx, %al
    testb $UART_LSR_DR, %al
    jz 1b
    movw $UART_RBR, %dx
    inb %dx, %al
    ret

# puts(ESI = NUL-terminated string).
.globl puts
puts:
    pushl %esi
1:  lodsb
    testb %al, %al
    jz 2f
    call putc
    jmp 1b
2:  popl %esi
    ret

.globl put_newline
put_newline:
    movb $'\n', %al
    jmp putc

# put_hex32(EAX): "0x" and 8 hex digits.
.globl put_hex32
put_hex32:
    pushl %ebx
    pushl %esi
    movl %eax, %ebx
    movb $'0', %al
    call putc
    movb $'x', %al
    call putc
    movl $8, %esi
1:  roll $4, %ebx
    movl %ebx, %eax
    andl $0xf, %eax
    movb hex_digits(%eax), %al
    call putc
    decl %esi
    jnz 1b
    popl %esi
    popl %ebx
    ret

# put_dec(EAX): unsigned decimal.
.globl put_dec
put_dec:
    pushl %ebx
    pushl %esi
    movl $10, %ebx
    xorl %esi, %esi
1:  xorl %edx, %edx
    divl %ebx
    addb $'0', %dl
    pushl %edx
    incl %esi
    testl %eax, %eax
    jnz 1b
2:  popl %eax
    call putc
    decl %esi
    jnz 2b
    popl %esi
    popl %ebx
    ret

# ---------------------------------------------------------------------------------------------
# Multiboot command line

# cmdline_uint(ESI = key including '=', e.g. "count=") -> EAX = value, CF clear; CF set when the
# loader passed no command line or the key is absent or has no digits. The key must start the
# command line or follow a space (QEMU passes "<kernel path> <-append text>"). Accepts decimal or
# 0x-prefixed hex; the scan is bounded to 4 KiB of command line.
.globl cmdline_uint
cmdline_uint:
    pushl %ebx
    pushl %edi
    pushl %ebp
    movl mb_info, %ebx
    testl $MBI_FLAG_CMDLINE, MBI_FLAGS(%ebx)
    jz 9f
    movl MBI_CMDLINE(%ebx), %edi   # EDI walks the command line
    leal 4096(%edi), %ebp          # scan limit
    movb $' ', %bl                 # previous character: as if preceded by a space
1:  cmpl %ebp, %edi
    jae 9f
    movb (%edi), %al
    testb %al, %al
    jz 9f
    cmpb $' ', %bl
    jne 3f
    # Does the key match here?
    xorl %ecx, %ecx
2:  movb (%esi,%ecx), %dl
    testb %dl, %dl
    jz 4f                          # whole key matched
    leal (%edi,%ecx), %eax
    cmpl %ebp, %eax
    jae 9f
    cmpb (%edi,%ecx), %dl
    jne 3f
    incl %ecx
    jmp 2b
3:  movb (%edi), %bl
    incl %edi
    jmp 1b
4:  addl %ecx, %edi                # EDI -> value text
    xorl %eax, %eax
    xorl %ecx, %ecx                # digits seen
    movl $10, %ebx
    cmpb $'0', (%edi)
    jne 5f
    movb 1(%edi), %dl
    orb $0x20, %dl
    cmpb $'x', %dl
    jne 5f
    movl $16, %ebx
    addl $2, %edi
5:  cmpl %ebp, %edi
    jae 8f
    movzbl (%edi), %edx
    subl $'0', %edx
    cmpl $10, %edx
    jb 6f
    cmpl $16, %ebx
    jne 8f
    movzbl (%edi), %edx
    orb $0x20, %dl
    subl $'a', %edx
    cmpl $6, %edx
    jae 8f
    addl $10, %edx
6:  imull %ebx, %eax
    addl %edx, %eax
    incl %ecx
    incl %edi
    jmp 5b
8:  testl %ecx, %ecx
    jz 9f
    clc
    jmp 10f
9:  stc
10: popl %ebp
    popl %edi
    popl %ebx
    ret

# ---------------------------------------------------------------------------------------------
# Interrupts

# idt_init(): every vector gets a stub that reports it and exits with EXIT_FAILURE; LAPIC spurious
# vector 0xFF is ignored (SDM 11.9: no EOI for spurious interrupts). Then LIDT.
.globl idt_init
idt_init:
    pushl %ebx
    xorl %ebx, %ebx
1:  movl %ebx, %edx
    shll $4, %edx
    addl $isr_stubs, %edx
    movl %ebx, %eax
    call idt_set_gate
    incl %ebx
    cmpl $IDT_ENTRIES, %ebx
    jb 1b
    movl $LAPIC_SPURIOUS_VECTOR, %eax
    movl $isr_ignore, %edx
    call idt_set_gate
    lidt idtr
    popl %ebx
    ret

# idt_set_gate(EAX = vector, EDX = handler): 32-bit interrupt gate in our code segment.
.globl idt_set_gate
idt_set_gate:
    cmpl $IDT_ENTRIES, %eax
    jae 1f
    leal idt(,%eax,8), %ecx
    movl %edx, %eax
    andl $0xffff, %eax
    orl $(SEL_CODE32 << 16), %eax
    movl %eax, (%ecx)
    movl %edx, %eax
    andl $0xffff0000, %eax
    orl $IDT_GATE_INT32, %eax
    movl %eax, 4(%ecx)
1:  ret

# One 16-byte stub per vector: push the vector number, join the common report.
.align 16
isr_stubs:
.set vec, 0
.rept IDT_ENTRIES
    .align 16
    pushl $vec
    jmp isr_unexpected
    .set vec, vec + 1
.endr

isr_unexpected:
    # Stack: vector, [error code], EIP, CS, EFLAGS. Report the vector and the next two words
    # (EIP and CS, or error code and EIP) and fail.
    movl $msg_unexpected, %esi
    call puts
    movl (%esp), %eax
    call put_hex32
    movl $msg_stack, %esi
    call puts
    movl 4(%esp), %eax
    call put_hex32
    movb $' ', %al
    call putc
    movl 8(%esp), %eax
    call put_hex32
    call put_newline
    movb $EXIT_FAILURE, %al
    jmp debug_exit

isr_ignore:
    jmp irq_return

# wait_irqs(EAX = address of a counter, EDX = target): enables interrupts until the handlers have
# counted *EAX up to EDX, then returns with interrupts disabled. The STI shadow covers the HLT, so
# no wake-up is lost between the check and the halt.
.globl wait_irqs
wait_irqs:
    movl %eax, wait_counter
    movl %edx, wait_target
    movl %esp, wait_esp
wait_irqs_check:
    cli
    movl wait_counter, %eax
    movl (%eax), %eax
    cmpl wait_target, %eax
    jae 1f
    sti
    hlt
    jmp wait_irqs_check
1:  movl $0, wait_esp
    ret

# irq_return: where interrupt handlers end. IF is set only on wait_irqs' HLT, so that is the only
# place an interrupt can arrive: drop the interrupt frame and re-check the counter.
.globl irq_return
irq_return:
    cmpl $0, wait_esp
    je 1f
    movl wait_esp, %esp
    jmp wait_irqs_check
1:  movl $msg_irq_outside, %esi
    call puts
    movb $EXIT_FAILURE, %al
    jmp debug_exit

# pic_init(AL = master mask, AH = slave mask): ICW1-ICW4 for the cascaded pair, vectors 0x20-0x2F,
# then the masks (OCW1). Spurious IRQ7/IRQ15 (8259A: IR line dropped before INTA) are ignored;
# IRQ15's still needs an EOI to the master for the cascade input.
.globl pic_init
pic_init:
    pushl %ebx
    movl %eax, %ebx
    movb $PIC_ICW1_INIT_ICW4, %al
    outb %al, $PIC1_CMD
    outb %al, $PIC2_CMD
    movb $PIC1_VECTOR_BASE, %al
    outb %al, $PIC1_DATA
    movb $PIC2_VECTOR_BASE, %al
    outb %al, $PIC2_DATA
    movb $0x04, %al              # ICW3 master: a slave on IR2
    outb %al, $PIC1_DATA
    movb $0x02, %al              # ICW3 slave: cascade identity 2
    outb %al, $PIC2_DATA
    movb $PIC_ICW4_8086, %al
    outb %al, $PIC1_DATA
    outb %al, $PIC2_DATA
    movl $PIC1_VECTOR_BASE + 7, %eax
    movl $isr_ignore, %edx
    call idt_set_gate
    movl $PIC2_VECTOR_BASE + 7, %eax
    movl $isr_pic2_spurious, %edx
    call idt_set_gate
    movb %bl, %al
    outb %al, $PIC1_DATA
    movb %bh, %al
    outb %al, $PIC2_DATA
    popl %ebx
    ret

isr_pic2_spurious:
    movb $PIC_OCW2_EOI, %al
    outb %al, $PIC1_CMD
    jmp irq_return

# lapic_enable(): software-enable the local APIC (SVR bit 8), spurious vector 0xFF, TPR 0.
.globl lapic_enable
lapic_enable:
    movl $(LAPIC_SVR_ENABLE | LAPIC_SPURIOUS_VECTOR), LAPIC_SVR
    movl $0, LAPIC_TPR
    ret

# lapic_virtual_wire(): LINT0 = ExtINT, unmasked, so the 8259's INTR reaches the CPU (MP spec
# 3.6.2.2 virtual wire mode). At reset the LVTs are masked; KVM and QEMU only accept PIC
# interrupts through an enabled LAPIC when LINT0 is ExtINT/unmasked. Call lapic_enable first: with
# the APIC software-disabled, LVT mask bits cannot be cleared (SDM 11.4.7.2).
.globl lapic_virtual_wire
lapic_virtual_wire:
    movl $LAPIC_DM_EXTINT, LAPIC_LVT_LINT0
    ret

# ---------------------------------------------------------------------------------------------
.section .rodata
hex_digits:
    .ascii "0123456789abcdef"
msg_bad_magic:
    .asciz "hvm-guest: not started by a multiboot loader, EAX="
msg_unexpected:
    .asciz "hvm-guest: unexpected vector "
msg_stack:
    .asciz " stack: "
msg_irq_outside:
    .asciz "hvm-guest: interrupt outside wait_irqs\n"

.section .data
.align 8
.globl gdt
gdt:
    .quad 0
    .quad 0x00cf9b000000ffff     # 0x08: code, base 0, limit 4 GiB, 32-bit, accessed
    .quad 0x00cf93000000ffff     # 0x10: data, base 0, limit 4 GiB, writable, accessed
gdt_end:
.align 4
    .word 0
.globl gdtr
gdtr:
    .word gdt_end - gdt - 1
    .long gdt
.align 4
    .word 0
idtr:
    .word IDT_ENTRIES * 8 - 1
    .long idt
.globl mb_info
mb_info:
    .long 0
wait_counter:
    .long 0
wait_target:
    .long 0
wait_esp:
    .long 0

.section .bss
.align 8
idt:
    .skip IDT_ENTRIES * 8
.align 16
    .skip 16384
stack_top:
