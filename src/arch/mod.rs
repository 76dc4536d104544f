//! Everything that names an AArch64 instruction or system register lives here, behind this one
//! module (the rest of the firmware calls these functions, never `asm!`).
//!
//! The fast paths the primitives inline (barriers, the counter, TPIDR_EL1 and the restartable
//! per-core add, interrupt masking) live in the platform crate's `arch` module and are
//! re-exported here, so each exists once.
//!
//! System registers and barriers come from the `aarch64-cpu` crate (the maintained successor of
//! `cortex-a`, whose default `nightly` feature does not build on stable Rust).

pub mod exception;
pub mod gic_cpuif;
pub mod mmu;
pub mod timer;

pub use quiescent_platform::arch::{
    counter, counter_freq, counter_relaxed, cpu_relax, dsb_ishst, in_interrupt, irqs_disabled, isb, local_irq_enable,
    local_irq_restore, local_irq_save, percpu_base, ras_restart_point, set_tpidr, sev, smp_mb, smp_rmb, smp_wmb,
    this_cpu_add_imm_u32, this_cpu_add_imm_u32_at, this_cpu_add_u32, ticks_to_ns, tpidr, wfe, IrqGuard, PercpuBase,
};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CurrentEL, MPIDR_EL1};
use tock_registers::interfaces::Readable;

// ---------------------------------------------------------------------------------------------
// Barriers and events (the rest are in the platform crate).
// ---------------------------------------------------------------------------------------------

/// `dsb ish`: waits until earlier memory accesses (and cache/TLB maintenance) complete. Its
/// caller (smp's bring-up, before starting a core) names the order it needs: core 0's writes
/// complete before the started core's first loads, through PSCI or the spin-table release.
#[inline(always)]
pub fn dsb_ish() {
    barrier::dsb(barrier::ISH);
}

/// Waits for an interrupt.
#[inline(always)]
pub fn wfi() {
    aarch64_cpu::asm::wfi();
}

/// Cleans and invalidates the data-cache line holding `addr` to the point of coherency
/// (`dc civac`), then waits for it with `dsb sy`: a write becomes visible to an observer that
/// reads memory with its caches off (a core parked in a spin table). Pairs with that observer's
/// non-cacheable load.
pub fn clean_dcache_line_poc(addr: usize) {
    // The dsb pairs with the observer's load after its wake-up (the caller's sev).
    // SAFETY: cache maintenance by address on a mapped line; it changes no memory contents.
    unsafe { core::arch::asm!("dc civac, {0}", "dsb sy", in(reg) addr, options(nostack, preserves_flags)) };
}

// ---------------------------------------------------------------------------------------------
// Identity, exception level, counter.
// ---------------------------------------------------------------------------------------------

/// MPIDR_EL1 affinity fields (Aff3..Aff0), as the DTB's `/cpus/*/reg` lists them.
#[inline]
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & 0xff_00ff_ffff
}

/// The current exception level (1 after boot).
#[inline]
pub fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}

/// Nanoseconds since the counter started.
pub fn now_ns() -> u64 {
    ticks_to_ns(counter())
}

/// Address of `secondary_entry` in `src/arch/boot/entry.S`, the entry point handed to PSCI/spin
/// tables.
pub fn secondary_entry_addr() -> usize {
    unsafe extern "C" {
        fn secondary_entry();
    }
    secondary_entry as *const () as usize
}
