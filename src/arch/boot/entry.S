// quiescent: entry code for every core.
//
// The image starts with the 64-byte arm64 Linux Image header, so QEMU's `-kernel`, U-Boot and the
// Raspberry Pi firmware all load it by the same protocol (and QEMU virt passes the DTB in x0).
//
// primary:   _start -> EL3/EL2 -> EL1, FP/SIMD on, BSS zeroed, stack of core 0, boot_primary(dtb, el)
// secondary: secondary_entry(x0 = logical core id) -> EL2 -> EL1, FP on, own stack,
//            boot_secondary(core, el)
//
// Constants come from Rust (global_asm! const operands):
//   {STACK_SLOT}  bytes per core in .stacks: guard page, stack (SP_EL0), guard page, exception
//                 stack (SP_EL1)
//   {STACK_TOP}   offset of the normal stack's top in a slot (guard + stack)
//   {MAX_CPUS}    the most cores; QUIESCENT_SLOTS (runtime.rs) holds each secondary's slot
//   {MAIR}, {TCR} MMU settings from src/arch/mmu.rs

.section .text.head, "ax"
.global _start
_start:
    // code0/code1: the header's first 8 bytes are executable.
    b       primary_entry
    .word   0
    // Both from linker.ld: text_offset = the link address minus the board's RAM base (board.ld
    // names the link address once; linker.ld checks it sits text_offset above a 2 MiB-aligned
    // RAM base); image_size = everything up to the board's image limit, since the runtime
    // carves the other cores' stacks and per-cpu areas out of the memory past _end.
    .quad   __text_offset           // text_offset (0x80000 on both boards)
    .quad   __image_size            // image_size
    // flags: bit 0 = 0 little-endian; bits 2:1 = 1, 4K pages; bit 3 = 0: the 2 MiB-aligned base
    // must be as close as possible to the start of RAM. The image is linked at a fixed address
    // (RAM base + text_offset) and does not relocate itself, so a loader that honours bit 3 = 1
    // (U-Boot's `booti` may move such an image anywhere) would break it.
    .quad   0x2
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .word   0                       // res5 (PE/COFF offset; none)

.section .text.boot, "ax"

// Leave EL3 and EL2 for EL1h with all exceptions masked. Clobbers x1; x19..x21 survive.
.macro drop_to_el1
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #3
    b.ne    1f
    // EL3: the lower levels are non-secure and AArch64 (SCR_EL3.NS|SMD|HCE|RW).
    mov     x1, #((1 << 0) | (1 << 7) | (1 << 8) | (1 << 10))
    msr     scr_el3, x1
    // GICv3 system-register interface (if this core has one): EL3 enables it for the lower
    // levels (ICC_SRE_EL3.Enable|SRE), or EL2/EL1 accesses to ICC_SRE_* trap.
    mrs     x1, id_aa64pfr0_el1
    ubfx    x1, x1, #24, #4
    cbz     x1, 0f
    mov     x1, #((1 << 3) | (1 << 0))
    msr     S3_6_C12_C12_5, x1      // ICC_SRE_EL3
    isb
0:
    mov     x1, #0x3c9              // EL2h, DAIF masked
    msr     spsr_el3, x1
    adr     x1, 1f
    msr     elr_el3, x1
    eret
1:
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    2f
    // EL2: EL1 is AArch64, may use the physical timer and counter, sees the real MIDR/MPIDR,
    // and is not trapped for FP/SIMD or coprocessor accesses.
    mov     x1, #(1 << 31)          // HCR_EL2.RW
    msr     hcr_el2, x1
    mrs     x1, cnthctl_el2
    orr     x1, x1, #3              // EL1PCTEN | EL1PCEN
    msr     cnthctl_el2, x1
    msr     cntvoff_el2, xzr
    mrs     x1, midr_el1
    msr     vpidr_el2, x1
    mrs     x1, mpidr_el1
    msr     vmpidr_el2, x1
    mov     x1, #0x33ff             // CPTR_EL2: RES1 bits, TFP = 0
    msr     cptr_el2, x1
    msr     hstr_el2, xzr
    // GICv3 system-register interface (if any): ICC_SRE_EL2.Enable lets EL1 use ICC_SRE_EL1,
    // .SRE selects the system registers for EL2 itself (required before EL1 may set its SRE).
    mrs     x1, id_aa64pfr0_el1
    ubfx    x1, x1, #24, #4
    cbz     x1, 0f
    mov     x1, #((1 << 3) | (1 << 0))
    msr     S3_4_C12_C9_5, x1       // ICC_SRE_EL2
    isb
    msr     S3_4_C12_C11_0, xzr     // ICH_HCR_EL2: no virtual CPU interface
0:
    ldr     x1, =0x30d00800         // SCTLR_EL1: RES1 bits, MMU and caches off, little-endian
    msr     sctlr_el1, x1
    mov     x1, #0x3c5              // EL1h, DAIF masked
    msr     spsr_el2, x1
    adr     x1, 2f
    msr     elr_el2, x1
    eret
2:
.endm

// FP/SIMD on: Rust for aarch64-unknown-none uses NEON registers, and traps without this.
.macro fp_on
    mov     x1, #(3 << 20)          // CPACR_EL1.FPEN = 0b11
    msr     cpacr_el1, x1
    isb
.endm

// Stacks of the slot at x1: SP_EL1 = slot + STACK_SLOT (exception stack), then SPSel = 0 and
// SP_EL0 = slot + STACK_TOP. Clobbers x1..x3.
.macro stack_at_x1
    ldr     x3, ={STACK_SLOT}
    add     x2, x1, x3
    mov     sp, x2
    msr     spsel, #0
    ldr     x3, ={STACK_TOP}
    add     x1, x1, x3
    mov     sp, x1
.endm

// Exceptions are reported from the first instruction on: install the vector table.
.macro vectors_on
    adrp    x1, exception_vectors
    add     x1, x1, :lo12:exception_vectors
    msr     vbar_el1, x1
    isb
.endm

primary_entry:
    mov     x19, x0                 // DTB address (Linux boot protocol), or 0
    mrs     x20, CurrentEL
    lsr     x20, x20, #2            // the EL we were entered at, for the boot report
    drop_to_el1
    fp_on
    vectors_on
    // Zero BSS (16-byte aligned by linker.ld).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b
4:  adrp    x1, __stacks_start      // core 0's slot is the static one in .stacks
    add     x1, x1, :lo12:__stacks_start
    stack_at_x1
    msr     tpidr_el1, xzr          // no per-cpu area yet
    mov     x0, x19
    mov     x1, x20
    bl      boot_primary
5:  wfe
    b       5b

// Spin-table entry (Raspberry Pi 4 firmware stub, QEMU raspi4b's `write_smpboot64`): the stub
// branches here with x0..x3 = 0, so the logical core comes from MPIDR_EL1.Aff0 (the BCM2711's
// cores are Aff0 0..3 of one cluster; core 0 boots), then the common secondary path runs.
.global spin_table_entry
spin_table_entry:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    b       secondary_entry

.global secondary_entry
secondary_entry:
    mov     x19, x0                 // logical core id (PSCI context_id / spin-table convention)
    mrs     x20, CurrentEL
    lsr     x20, x20, #2
    drop_to_el1
    fp_on
    vectors_on
    cmp     x19, #{MAX_CPUS}
    b.hs    6f
    // MMU and caches on before the first memory access: core 0 wrote the tables with its MMU
    // off, and this core must not read anything through a non-coherent (MMU-off) view.
    adrp    x0, QUIESCENT_L1_TABLE
    add     x0, x0, :lo12:QUIESCENT_L1_TABLE
    bl      mmu_on
    // This core's slot, given out by core 0 at boot (runtime.rs: QUIESCENT_SLOTS); none: park.
    adrp    x1, QUIESCENT_SLOTS
    add     x1, x1, :lo12:QUIESCENT_SLOTS
    ldr     x1, [x1, x19, lsl #3]
    cbz     x1, 6f
    stack_at_x1
    msr     tpidr_el1, xzr
    mov     x0, x19
    mov     x1, x20
    bl      boot_secondary
6:  wfe
    b       6b
// mmu_on(x0 = TTBR0 value): MAIR, TCR (IPS from ID_AA64MMFR0_EL1.PARange), TTBR0, TLB and
// I-cache invalidation, then SCTLR_EL1.M|C|I|WXN. A leaf: no stack, clobbers x1, x2.
.global mmu_on
mmu_on:
    ldr     x1, ={MAIR}
    msr     mair_el1, x1
    mrs     x1, id_aa64mmfr0_el1
    and     x1, x1, #0xf
    cmp     x1, #5
    mov     x2, #5
    csel    x1, x1, x2, ls
    ldr     x2, ={TCR}
    bfi     x2, x1, #32, #3
    msr     tcr_el1, x2
    msr     ttbr0_el1, x0
    isb                             // the translation registers are set before the TLB flush
    tlbi    vmalle1
    ic      iallu
    dsb     nsh                     // TLB and I-cache invalidation complete before the MMU is on
    isb
    mrs     x1, sctlr_el1
    mov     x2, #((1 << 0) | (1 << 2) | (1 << 12))  // M | C | I
    orr     x1, x1, x2
    orr     x1, x1, #(1 << 19)      // WXN: writable memory is never executable
    msr     sctlr_el1, x1
    isb                             // later instructions are fetched with translation on
    ret
.ltorg
