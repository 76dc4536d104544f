//! The GICv3 CPU interface: the `ICC_*_EL1` system registers (GICv3 architecture specification,
//! IHI 0069, 12.2). The driver (`drivers::gic`) decides what to write; this module only names the
//! registers, so that every `msr`/`mrs` stays in the arch layer.
//!
//! Written by their `S3_*` encodings so no assembler feature flag is needed.

use core::arch::asm;

/// Whether this core implements the GICv3 system-register interface (ID_AA64PFR0_EL1.GIC != 0).
/// QEMU sets the field only when a GICv3 is attached; the Pi 4's GIC-400 (GICv2) has none.
pub fn present() -> bool {
    let pfr0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) pfr0, options(nomem, nostack, preserves_flags)) };
    (pfr0 >> 24) & 0xf != 0
}

/// ICC_SRE_EL1.SRE = 1 (system-register access to the CPU interface, not the memory-mapped one);
/// the boot code has already set ICC_SRE_EL2.Enable when it entered at EL2. Then `isb`, so the
/// later `ICC_*` accesses see it.
pub fn enable_sre() {
    // SAFETY: only the SRE bit (and DFB/DIB, kept) changes; callers do this before any other ICC
    // access on this core.
    unsafe {
        asm!(
            "mrs {t}, S3_0_C12_C12_5",
            "orr {t}, {t}, #1",
            "msr S3_0_C12_C12_5, {t}",
            "isb",
            t = out(reg) _,
            options(nostack, preserves_flags)
        )
    };
}

/// ICC_SRE_EL1.SRE as it now reads (RAO/WI on QEMU; 0 would mean EL2 did not allow it).
pub fn sre() -> bool {
    let v: u64;
    // SAFETY: reading ICC_SRE_EL1 has no side effects.
    unsafe { asm!("mrs {}, S3_0_C12_C12_5", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v & 1 != 0
}

/// ICC_PMR_EL1: interrupts with a priority value below `pmr` are signalled.
pub fn set_pmr(pmr: u8) {
    // SAFETY: a priority mask; affects only which interrupts this core takes.
    unsafe { asm!("msr S3_0_C4_C6_0, {}", in(reg) pmr as u64, options(nostack, preserves_flags)) };
}

/// ICC_BPR1_EL1: group-1 binary point (0: every priority bit is a preemption level).
pub fn set_bpr1(bpr: u8) {
    // SAFETY: as set_pmr.
    unsafe { asm!("msr S3_0_C12_C12_3, {}", in(reg) bpr as u64, options(nostack, preserves_flags)) };
}

/// ICC_CTLR_EL1 = 0: EOImode 0 (a write to EOIR also deactivates), no CBPR.
pub fn set_ctlr_default() {
    // SAFETY: as set_pmr.
    unsafe { asm!("msr S3_0_C12_C12_4, xzr", options(nostack, preserves_flags)) };
}

/// ICC_IGRPEN1_EL1 = 1: group-1 interrupts are signalled to this core; then `isb`.
pub fn enable_group1() {
    // SAFETY: enables interrupt delivery; PSTATE.I still masks them until the caller unmasks.
    unsafe { asm!("msr S3_0_C12_C12_7, {}", "isb", in(reg) 1u64, options(nostack, preserves_flags)) };
}

/// Reads ICC_IAR1_EL1 (acknowledges the highest-priority pending group-1 interrupt), then
/// `dsb sy`, as Linux's `gic_read_iar`: the acknowledge completes before any later memory
/// access, so an SGI's handler reads its sender's message only after the acknowledge (pairs with
/// the `dsb ishst` before [`write_sgi1r`] in `drivers::gic`'s `send_sgi`).
pub fn read_iar1() -> u32 {
    let v: u64;
    // SAFETY: acknowledging an interrupt is what the caller (the IRQ dispatcher) is for.
    unsafe { asm!("mrs {}, S3_0_C12_C12_0", "dsb sy", out(reg) v, options(nostack, preserves_flags)) };
    v as u32
}

/// Writes ICC_EOIR1_EL1 (end of interrupt, and deactivation in EOImode 0), then `isb`, as Linux's
/// `gic_write_eoir`, so the priority drop takes effect before the next acknowledge.
pub fn write_eoir1(iar: u32) {
    // SAFETY: ends the interrupt the dispatcher acknowledged.
    unsafe { asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) iar as u64, options(nostack, preserves_flags)) };
}

/// Writes ICC_SGI1R_EL1 (generate a group-1 SGI), then `isb` so the write is issued before
/// whatever the sender does next (Linux's `gic_ipi_send_mask`). The caller orders its message
/// before this with `dsb ishst`.
pub fn write_sgi1r(v: u64) {
    // SAFETY: sends an interrupt; nothing else changes.
    unsafe { asm!("msr S3_0_C12_C11_5, {}", "isb", in(reg) v, options(nostack, preserves_flags)) };
}
