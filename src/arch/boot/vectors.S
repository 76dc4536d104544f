// quiescent: the EL1 exception vector table (VBAR_EL1), installed on every core by entry.S.
//
// Normal code runs on SP_EL0 (SPSel = 0); an exception switches to SP_EL1, a separate per-core
// exception stack above the normal stack. So a stack overflow into the guard page still has a
// good stack to report from, and an exception taken *inside* a handler (SPSel = 1: the "current
// EL with SPx" group) is recognised as nested.
//
// Frame (src/arch/exception.rs `Frame`, 16-aligned): x0..x30, ELR, SPSR, SP_EL0 (34 slots),
// q0..q31, FPSR, FPCR. FP/SIMD registers are saved because Rust handlers may use them. Its size
// and the offset of the FP part come from the Rust type (global_asm! operands), so the two
// cannot disagree.

.equ FRAME_GP,    {FRAME_GP}
.equ FRAME_SIZE,  {FRAME_SIZE}

.macro save_frame
    sub     sp, sp, #FRAME_SIZE
    stp     x0, x1, [sp, #(0 * 8)]
    stp     x2, x3, [sp, #(2 * 8)]
    stp     x4, x5, [sp, #(4 * 8)]
    stp     x6, x7, [sp, #(6 * 8)]
    stp     x8, x9, [sp, #(8 * 8)]
    stp     x10, x11, [sp, #(10 * 8)]
    stp     x12, x13, [sp, #(12 * 8)]
    stp     x14, x15, [sp, #(14 * 8)]
    stp     x16, x17, [sp, #(16 * 8)]
    stp     x18, x19, [sp, #(18 * 8)]
    stp     x20, x21, [sp, #(20 * 8)]
    stp     x22, x23, [sp, #(22 * 8)]
    stp     x24, x25, [sp, #(24 * 8)]
    stp     x26, x27, [sp, #(26 * 8)]
    stp     x28, x29, [sp, #(28 * 8)]
    mrs     x0, elr_el1
    stp     x30, x0, [sp, #(30 * 8)]
    mrs     x0, spsr_el1
    mrs     x1, sp_el0
    stp     x0, x1, [sp, #(32 * 8)]
    add     x0, sp, #FRAME_GP
    stp     q0, q1, [x0, #(0 * 32)]
    stp     q2, q3, [x0, #(1 * 32)]
    stp     q4, q5, [x0, #(2 * 32)]
    stp     q6, q7, [x0, #(3 * 32)]
    stp     q8, q9, [x0, #(4 * 32)]
    stp     q10, q11, [x0, #(5 * 32)]
    stp     q12, q13, [x0, #(6 * 32)]
    stp     q14, q15, [x0, #(7 * 32)]
    stp     q16, q17, [x0, #(8 * 32)]
    stp     q18, q19, [x0, #(9 * 32)]
    stp     q20, q21, [x0, #(10 * 32)]
    stp     q22, q23, [x0, #(11 * 32)]
    stp     q24, q25, [x0, #(12 * 32)]
    stp     q26, q27, [x0, #(13 * 32)]
    stp     q28, q29, [x0, #(14 * 32)]
    stp     q30, q31, [x0, #(15 * 32)]
    mrs     x1, fpsr
    mrs     x2, fpcr
    add     x3, x0, #(16 * 32)
    stp     x1, x2, [x3]
.endm

.macro restore_frame
    add     x0, sp, #FRAME_GP
    add     x3, x0, #(16 * 32)
    ldp     x1, x2, [x3]
    msr     fpsr, x1
    msr     fpcr, x2
    ldp     q0, q1, [x0, #(0 * 32)]
    ldp     q2, q3, [x0, #(1 * 32)]
    ldp     q4, q5, [x0, #(2 * 32)]
    ldp     q6, q7, [x0, #(3 * 32)]
    ldp     q8, q9, [x0, #(4 * 32)]
    ldp     q10, q11, [x0, #(5 * 32)]
    ldp     q12, q13, [x0, #(6 * 32)]
    ldp     q14, q15, [x0, #(7 * 32)]
    ldp     q16, q17, [x0, #(8 * 32)]
    ldp     q18, q19, [x0, #(9 * 32)]
    ldp     q20, q21, [x0, #(10 * 32)]
    ldp     q22, q23, [x0, #(11 * 32)]
    ldp     q24, q25, [x0, #(12 * 32)]
    ldp     q26, q27, [x0, #(13 * 32)]
    ldp     q28, q29, [x0, #(14 * 32)]
    ldp     q30, q31, [x0, #(15 * 32)]
    ldp     x0, x1, [sp, #(32 * 8)]
    msr     spsr_el1, x0
    ldp     x30, x0, [sp, #(30 * 8)]
    msr     elr_el1, x0
    ldp     x0, x1, [sp, #(0 * 8)]
    ldp     x2, x3, [sp, #(2 * 8)]
    ldp     x4, x5, [sp, #(4 * 8)]
    ldp     x6, x7, [sp, #(6 * 8)]
    ldp     x8, x9, [sp, #(8 * 8)]
    ldp     x10, x11, [sp, #(10 * 8)]
    ldp     x12, x13, [sp, #(12 * 8)]
    ldp     x14, x15, [sp, #(14 * 8)]
    ldp     x16, x17, [sp, #(16 * 8)]
    ldp     x18, x19, [sp, #(18 * 8)]
    ldp     x20, x21, [sp, #(20 * 8)]
    ldp     x22, x23, [sp, #(22 * 8)]
    ldp     x24, x25, [sp, #(24 * 8)]
    ldp     x26, x27, [sp, #(26 * 8)]
    ldp     x28, x29, [sp, #(28 * 8)]
    add     sp, sp, #FRAME_SIZE
.endm

// Each vector slot is 0x80 bytes (32 instructions): too small for the frame, so it branches.
.macro ventry target
.balign 0x80
    b       \target
.endm

// A fatal exception: save everything, hand Rust the frame and which vector fired.
.macro fatal_stub kind
fatal_\kind:
    save_frame
    mov     x0, sp
    mov     x1, #\kind
    bl      exception_fatal
    b       .
.endm

.section .text.vectors, "ax"
.balign 2048
.global exception_vectors
exception_vectors:
// Current EL with SP_EL0: normal operation. Every synchronous exception is fatal here.
    ventry  fatal_0
    ventry  irq_entry
    ventry  fatal_2                 // FIQ (not used)
    ventry  fatal_3                 // SError
// Current EL with SP_EL1: an exception inside a handler.
    ventry  fatal_4
    ventry  fatal_5
    ventry  fatal_6
    ventry  fatal_7
// Lower EL, AArch64 and AArch32: nothing runs below EL1.
    ventry  fatal_8
    ventry  fatal_9
    ventry  fatal_10
    ventry  fatal_11
    ventry  fatal_12
    ventry  fatal_13
    ventry  fatal_14
    ventry  fatal_15

irq_entry:
    save_frame
    mov     x0, sp
    bl      exception_irq
    restore_frame
    eret

    fatal_stub 0
    fatal_stub 2
    fatal_stub 3
    fatal_stub 4
    fatal_stub 5
    fatal_stub 6
    fatal_stub 7
    fatal_stub 8
    fatal_stub 9
    fatal_stub 10
    fatal_stub 11
    fatal_stub 12
    fatal_stub 13
    fatal_stub 14
    fatal_stub 15
