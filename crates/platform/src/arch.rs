//! The AArch64 fast paths the primitives inline: barriers, the counter, the per-cpu base
//! register (TPIDR_EL1) and the restartable per-core add, interrupt masking and the
//! interrupt-context test. A kernel on this platform uses these too (its own arch layer
//! re-exports them), so each exists once.
//!
//! Conventions the kernel keeps: TPIDR_EL1 holds this core's per-cpu offset (see
//! [`crate::percpu`](mod@crate::percpu)); normal code runs on SP_EL0 and every exception switches to SP_EL1 (so
//! [`in_interrupt`] reads SPSel); the IRQ entry calls [`ras_restart_point`] with the interrupted
//! PC and resumes where it says; the linker script gathers `.ras_table` between `__ras_start` and
//! `__ras_end`.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{SPSel, CNTFRQ_EL0, CNTVCT_EL0, DAIF, TPIDR_EL1};
use tock_registers::interfaces::{Readable, Writeable};

/// Full barrier between cores (`dmb ish`): orders all earlier loads and stores before all later.
/// Every caller labels its use and names the barrier it pairs with.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn smp_mb() {
    barrier::dmb(barrier::ISH);
}

/// Read barrier between cores (`dmb ishld`): orders earlier loads before later loads and stores.
/// Every caller names the barrier it pairs with.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn smp_rmb() {
    barrier::dmb(barrier::ISHLD);
}

/// Write barrier between cores (`dmb ishst`): orders earlier stores before later stores.
/// Every caller names the barrier it pairs with.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn smp_wmb() {
    barrier::dmb(barrier::ISHST);
}

/// `dsb ishst`: waits until earlier stores complete (used before SEV so a woken core sees them).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn dsb_ishst() {
    barrier::dsb(barrier::ISHST);
}

/// `isb`: later instructions see the effect of earlier system-register writes.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn isb() {
    barrier::isb(barrier::SY);
}

/// Waits for an event (SEV from any core, an interrupt, or a cleared exclusive monitor).
///
/// Context: any; pauses until an event, so only in a loop that re-checks its condition.
#[inline(always)]
pub fn wfe() {
    aarch64_cpu::asm::wfe();
}

/// Signals an event to every core.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn sev() {
    aarch64_cpu::asm::sev();
}

/// A hint for spin-wait loops.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn cpu_relax() {
    core::hint::spin_loop();
}

/// The virtual counter (CNTVCT_EL0).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn counter() -> u64 {
    isb(); // keeps the read from being hoisted above earlier instructions
    CNTVCT_EL0.get()
}

/// The virtual counter without the ISB: may be read a little early; for timestamps that only
/// need to be roughly right (stall detection, statistics) on paths where an ISB would cost.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn counter_relaxed() -> u64 {
    CNTVCT_EL0.get()
}

/// The counter frequency in Hz (CNTFRQ_EL0, as set by firmware or QEMU; never hard-coded).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn counter_freq() -> u64 {
    CNTFRQ_EL0.get()
}

/// Converts counter ticks to nanoseconds.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn ticks_to_ns(ticks: u64) -> u64 {
    let f = counter_freq().max(1);
    ((ticks as u128 * 1_000_000_000) / f as u128) as u64
}

/// The ordering of a load whose result is dereferenced (`rcu_dereference`): Relaxed, a plain
/// `ldr`, because on ARMv8 the address dependency from the pointer to the loads through it
/// orders them (Linux's `READ_ONCE`); the publisher's store-release pairs with it.
pub const DEREF_ORDERING: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Relaxed;

/// Reads TPIDR_EL1: the offset from a per-cpu variable's template address to this core's copy.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn tpidr() -> usize {
    TPIDR_EL1.get() as usize
}

/// Sets TPIDR_EL1.
///
/// Context: boot only, on the core itself, before its first per-cpu access.
///
/// # Safety
/// Every later per-cpu access on this core goes through the new value: it must be the offset of
/// this core's initialised area.
#[inline]
pub unsafe fn set_tpidr(v: usize) {
    TPIDR_EL1.set(v as u64);
}

pub use crate::percpu::PercpuBase;

/// Reads TPIDR_EL1 for per-cpu address arithmetic on a hot path. Marked pure so the compiler
/// may reuse one read across a function: sound because TPIDR_EL1 is set once per core at boot
/// and code here never migrates between cores (there is no preemption or scheduler).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn percpu_base() -> PercpuBase {
    let v: usize;
    // SAFETY: reads a system register; no memory effects; constant for the core's lifetime.
    unsafe { core::arch::asm!("mrs {}, tpidr_el1", out(reg) v, options(pure, nomem, nostack, preserves_flags)) };
    PercpuBase::this_core(v)
}

/// The restartable `ldr` / `$op` / `str` on `[$ptr + $base]` with its `.ras_table` entry (first
/// instruction, store): see [`this_cpu_add_u32`]. `$v` is the value register's template
/// (`"{v:w}"` for 32 bits, `"{v}"` for 64); `$op` computes it from itself and `{d}`.
macro_rules! ras_rmw {
    ($v:literal, $op:literal, $ptr:expr, $base:expr, $($d:tt)*) => {
        core::arch::asm!(
            concat!("2: ldr ", $v, ", [{p}, {off}]"),
            $op,
            concat!("3: str ", $v, ", [{p}, {off}]"),
            ".pushsection .ras_table, \"a\"",
            ".balign 8",
            ".quad 2b, 3b",
            ".popsection",
            p = in(reg) $ptr,
            off = in(reg) $base,
            d = $($d)*,
            v = out(reg) _,
            options(nostack, preserves_flags),
        )
    };
}

/// Adds `delta` to the `u32` at `ptr + TPIDR_EL1` (this core's copy of a per-cpu counter):
/// Linux's `this_cpu_add`, IRQ-safe without masking, without a barrier, without an exclusive.
///
/// It is a *restartable sequence*: a plain `ldr`/`add`/`str` whose bounds are recorded in the
/// `.ras_table` section. If an interrupt arrives after the `ldr` and before the `str` has
/// executed, the kernel's IRQ entry (through [`ras_restart_point`]) moves the return address
/// back to the `ldr`, so the interrupted sequence reloads the counter (including whatever the handler added) and the
/// handler's update is never overwritten. Cost on the fast path: an `mrs` (hoistable) and three
/// instructions. No DMB: callers that need ordering (the slow paths) add their own barrier.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// `ptr` must be a per-cpu template address of a `u32` (a `percpu!` variable or a `PercpuBox`
/// slot that is still allocated): `ptr` + TPIDR_EL1 is then this core's copy, valid and
/// 4-byte aligned, written only by this core.
#[inline(always)]
pub unsafe fn this_cpu_add_u32(ptr: *mut u32, delta: u32) {
    // Only this core writes its copy (here or in its own interrupt handlers: the restart).
    // SAFETY: by the caller's contract `ptr` + TPIDR_EL1 is this core's copy.
    unsafe { ras_rmw!("{v:w}", "add {v:w}, {v:w}, {d:w}", ptr, percpu_base().get(), in(reg) delta) };
}

/// [`this_cpu_add_u32`] by a constant: the constant is an immediate operand, saving the `mov`.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u32`].
#[inline(always)]
pub unsafe fn this_cpu_add_imm_u32<const DELTA: i32>(ptr: *mut u32) {
    // SAFETY: the caller's contract is this function's.
    unsafe { this_cpu_add_imm_u32_at::<DELTA>(ptr, percpu_base()) }
}

/// [`this_cpu_add_imm_u32`] with this core's TPIDR_EL1 already read, so a caller can read it
/// once, unconditionally, where the compiler can keep it in a register across a loop.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u32`].
#[inline(always)]
pub unsafe fn this_cpu_add_imm_u32_at<const DELTA: i32>(ptr: *mut u32, base: PercpuBase) {
    // SAFETY: `base` is this core's TPIDR_EL1 (only `percpu_base` makes one), and `ptr` is a
    // per-cpu template address by the caller's contract.
    unsafe {
        if DELTA >= 0 {
            ras_rmw!("{v:w}", "add {v:w}, {v:w}, #{d}", ptr, base.get(), const DELTA)
        } else {
            ras_rmw!("{v:w}", "sub {v:w}, {v:w}, #{d}", ptr, base.get(), const -DELTA)
        }
    }
}

/// [`this_cpu_add_u32`] on a `u64` counter (Linux's per-cpu counters are `unsigned long`): the
/// same three instructions on x registers, so no count of live references can wrap it.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u32`], for a per-cpu `u64` (8-byte aligned).
#[inline(always)]
pub unsafe fn this_cpu_add_u64(ptr: *mut u64, delta: u64) {
    // SAFETY: by the caller's contract `ptr` + TPIDR_EL1 is this core's copy.
    unsafe { ras_rmw!("{v}", "add {v}, {v}, {d}", ptr, percpu_base().get(), in(reg) delta) };
}

/// [`this_cpu_add_u64`] by a constant, with this core's TPIDR_EL1 already read (as
/// [`this_cpu_add_imm_u32_at`]).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u64`].
#[inline(always)]
pub unsafe fn this_cpu_add_imm_u64_at<const DELTA: i32>(ptr: *mut u64, base: PercpuBase) {
    // SAFETY: `base` is this core's TPIDR_EL1 (only `percpu_base` makes one), and `ptr` is a
    // per-cpu template address by the caller's contract.
    unsafe {
        if DELTA >= 0 {
            ras_rmw!("{v}", "add {v}, {v}, #{d}", ptr, base.get(), const DELTA)
        } else {
            ras_rmw!("{v}", "sub {v}, {v}, #{d}", ptr, base.get(), const -DELTA)
        }
    }
}

/// [`this_cpu_add_imm_u64_at`] with TPIDR_EL1 read here.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u64`].
#[inline(always)]
pub unsafe fn this_cpu_add_imm_u64<const DELTA: i32>(ptr: *mut u64) {
    // SAFETY: the caller's contract is this function's.
    unsafe { this_cpu_add_imm_u64_at::<DELTA>(ptr, percpu_base()) }
}

/// If `elr` (an interrupted PC) lies inside a restartable sequence, after its first instruction
/// and at or before its store, returns the address to restart from (the first instruction).
///
/// Context: the kernel's interrupt entry only (a lookup in a read-only table; never blocks).
pub fn ras_restart_point(elr: u64) -> Option<u64> {
    unsafe extern "C" {
        static __ras_start: [u64; 0];
        static __ras_end: [u64; 0];
    }
    let (start, end) =
        (core::ptr::addr_of!(__ras_start) as *const [u64; 2], core::ptr::addr_of!(__ras_end) as *const [u64; 2]);
    // SAFETY: the linker gathers every `.ras_table` entry (two addresses each) between the two
    // symbols; the section is read-only data.
    let table = unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) };
    table.iter().find(|&&[lo, st]| elr > lo && elr <= st).map(|&[lo, _]| lo)
}

/// Masks IRQ and FIQ on this core and returns the previous DAIF value.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn local_irq_save() -> u64 {
    let flags = DAIF.get();
    // SAFETY: masking interrupts has no memory effects; `memory` clobber keeps the compiler
    // from moving accesses of the critical section above it.
    unsafe { core::arch::asm!("msr daifset, #3", options(nostack)) };
    flags
}

/// Restores DAIF from [`local_irq_save`] (so nested save/restore pairs are correct).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn local_irq_restore(flags: u64) {
    // SAFETY: writes back a DAIF value read earlier on this core; the asm acts as a compiler
    // barrier so the critical section's accesses stay before it.
    unsafe { core::arch::asm!("msr daif, {0}", in(reg) flags, options(nostack)) };
}

/// Unmasks IRQ and FIQ on this core.
///
/// Context: task only, not an interrupt handler (handlers do not nest); never blocks.
#[inline(always)]
pub fn local_irq_enable() {
    // SAFETY: as `local_irq_restore`.
    unsafe { core::arch::asm!("msr daifclr, #3", options(nostack)) };
}

/// Whether IRQs are masked on this core.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn irqs_disabled() -> bool {
    DAIF.get() & (1 << 7) != 0
}

/// Whether this core is running an exception handler (Linux's `in_interrupt()`). Normal code
/// runs on SP_EL0 and every exception switches to SP_EL1 (the kernel's exception vectors), so the stack
/// pointer selected (SPSel) tells, with no per-core state to keep.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn in_interrupt() -> bool {
    SPSel.read(SPSel::SP) == 1
}

pub use crate::irq_guard::IrqGuard;
