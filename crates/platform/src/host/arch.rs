//! The fast paths on the host machine ([`crate::host`]): what [`arch`](self) is on AArch64, here
//! for threads that stand for cores.
//!
//! * Barriers are fences: `smp_mb` a SeqCst fence, `smp_rmb` Acquire, `smp_wmb` Release (the
//!   C11 model the compiler targets; on x86-64 only the SeqCst fence is an instruction).
//! * The per-cpu base is a thread-local word set when a thread becomes a core. A thread that is
//!   not a core has none: every per-cpu access on it panics, naming the misuse, instead of
//!   reaching the template (which no core owns).
//! * The per-core add is a relaxed load and a relaxed store of this core's copy. It is not an
//!   atomic read-modify-write, as on the firmware, and it needs no restart: the host takes
//!   interrupts only at the points named in [`crate::host`], never between the two.
//! * Interrupts are a per-thread mask and a per-core queue of calls (`call_function_single`)
//!   and ticks, taken when the core waits ([`wfe`]), spins ([`cpu_relax`]) or unmasks.
//! * The counter is the process's monotonic clock in nanoseconds.

use crate::host::irq;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::cell::Cell;

/// Full barrier between cores: a SeqCst fence. Every caller labels its use and names the
/// barrier it pairs with.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn smp_mb() {
    fence(Ordering::SeqCst);
}

/// Read barrier between cores: an Acquire fence (orders earlier loads before later loads and
/// stores, as `dmb ishld`).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn smp_rmb() {
    fence(Ordering::Acquire);
}

/// Write barrier between cores: a Release fence (stronger than `dmb ishst`, which orders only
/// stores before stores).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn smp_wmb() {
    fence(Ordering::Release);
}

/// Before [`sev`]: a SeqCst fence (the host's event is a mutex, which orders on its own; this
/// keeps the waker's stores before the event as `dsb ishst` does).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn dsb_ishst() {
    fence(Ordering::SeqCst);
}

/// Waits for an event: takes this core's pending interrupts, then returns at once if an event
/// was signalled since this core's last `wfe` (the event latch), or else sleeps until one is,
/// or for at most a millisecond (WFE may return spuriously; callers re-check).
///
/// Context: any; pauses until an event, so only in a loop that re-checks its condition.
pub fn wfe() {
    irq::take_pending();
    irq::wait_for_event(core::time::Duration::from_millis(1));
}

/// Signals an event to every core (wakes every [`wfe`]).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn sev() {
    irq::signal_event();
}

/// A spin-wait hint: takes this core's pending interrupts (a spinning core has them unmasked
/// on the firmware too) and yields the host CPU to another thread, since the host may run more
/// cores than it has CPUs.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn cpu_relax() {
    irq::take_pending();
    core::hint::spin_loop();
    std::thread::yield_now();
}

/// The ordering of a load whose result is dereferenced (`rcu_dereference`): Acquire. The
/// compiler optimises against the C11 model, which has no dependency ordering: a Relaxed load
/// followed by plain reads through the pointer would race with the publisher's initialising
/// writes. On x86-64 an Acquire load is a plain load; on an arm64 host it is an `ldar`.
pub const DEREF_ORDERING: Ordering = Ordering::Acquire;

fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// The counter: nanoseconds of the process's monotonic clock.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn counter() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// As [`counter`] (the host has no cheaper variant).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn counter_relaxed() -> u64 {
    counter()
}

/// The counter frequency: 1 GHz (the counter counts nanoseconds).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn counter_freq() -> u64 {
    1_000_000_000
}

/// Converts counter ticks to nanoseconds (the identity).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ticks
}

std::thread_local! {
    /// This thread's per-cpu offset, or `NOT_A_CORE`.
    static TPIDR: Cell<usize> = const { Cell::new(NOT_A_CORE) };
}

/// The per-cpu offset of a thread that is not a core.
const NOT_A_CORE: usize = usize::MAX;

#[cold]
#[inline(never)]
fn not_a_core() -> ! {
    panic!("per-cpu data used on a thread that is not a core: run the code through quiescent_platform::host (on_cpu, on_each_cpu)")
}

/// This core's per-cpu offset (the firmware's TPIDR_EL1). Panics on a thread that is not a
/// core.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn tpidr() -> usize {
    let v = TPIDR.with(Cell::get);
    if v == NOT_A_CORE {
        not_a_core();
    }
    v
}

/// Whether this thread is a core of the host machine.
pub(crate) fn is_core() -> bool {
    TPIDR.with(Cell::get) != NOT_A_CORE
}

/// Sets this thread's per-cpu offset: it becomes a core.
///
/// Context: the host machine only, when a thread becomes a core.
///
/// # Safety
/// Every later per-cpu access on this thread goes through the new value: it must be the offset
/// of the initialised area of a core no other thread is.
pub unsafe fn set_tpidr(v: usize) {
    TPIDR.with(|t| t.set(v));
}

pub use crate::percpu::PercpuBase;

/// Reads this core's per-cpu offset for address arithmetic on a hot path.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn percpu_base() -> PercpuBase {
    PercpuBase::this_core(tpidr())
}

/// Adds `delta` to this core's copy of a per-cpu `u32` (Linux's `this_cpu_add`): a relaxed
/// load and store, no barrier, no read-modify-write. Only this core writes its copy, and the
/// host takes no interrupt between the two.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// `ptr` must be a per-cpu template address of a `u32` (a `percpu!` variable or a `PercpuBox`
/// slot that is still allocated): `ptr` + this core's offset is then this core's copy, valid
/// and 4-byte aligned, written only by this core.
#[inline]
pub unsafe fn this_cpu_add_u32(ptr: *mut u32, delta: u32) {
    // SAFETY: the caller's contract.
    unsafe { this_cpu_add_u32_at(ptr, percpu_base(), delta) }
}

/// # Safety
/// As [`this_cpu_add_u32`], with `base` this core's.
#[inline]
unsafe fn this_cpu_add_u32_at(ptr: *mut u32, base: PercpuBase, delta: u32) {
    // SAFETY: by the caller's contract the address is this core's live, aligned copy; other
    // cores only read it, or store to it under their own contract (`remote_set`), atomically.
    let c = unsafe { AtomicU32::from_ptr((ptr as usize).wrapping_add(base.get()) as *mut u32) };
    c.store(c.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
}

/// [`this_cpu_add_u32`] by a constant.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u32`].
#[inline]
pub unsafe fn this_cpu_add_imm_u32<const DELTA: i32>(ptr: *mut u32) {
    // SAFETY: the caller's contract.
    unsafe { this_cpu_add_u32_at(ptr, percpu_base(), DELTA as u32) }
}

/// [`this_cpu_add_imm_u32`] with this core's base already read.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u32`].
#[inline]
pub unsafe fn this_cpu_add_imm_u32_at<const DELTA: i32>(ptr: *mut u32, base: PercpuBase) {
    // SAFETY: the caller's contract; `base` is this core's (only `percpu_base` makes one).
    unsafe { this_cpu_add_u32_at(ptr, base, DELTA as u32) }
}

/// [`this_cpu_add_u32`] on a `u64` counter.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u32`], for a per-cpu `u64` (8-byte aligned).
#[inline]
pub unsafe fn this_cpu_add_u64(ptr: *mut u64, delta: u64) {
    // SAFETY: the caller's contract.
    unsafe { this_cpu_add_u64_at(ptr, percpu_base(), delta) }
}

/// # Safety
/// As [`this_cpu_add_u64`], with `base` this core's.
#[inline]
unsafe fn this_cpu_add_u64_at(ptr: *mut u64, base: PercpuBase, delta: u64) {
    // SAFETY: as in `this_cpu_add_u32_at`.
    let c = unsafe { AtomicU64::from_ptr((ptr as usize).wrapping_add(base.get()) as *mut u64) };
    c.store(c.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
}

/// [`this_cpu_add_u64`] by a constant, with this core's base already read.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u64`].
#[inline]
pub unsafe fn this_cpu_add_imm_u64_at<const DELTA: i32>(ptr: *mut u64, base: PercpuBase) {
    // SAFETY: the caller's contract; `base` is this core's.
    unsafe { this_cpu_add_u64_at(ptr, base, DELTA as i64 as u64) }
}

/// [`this_cpu_add_imm_u64_at`] with the base read here.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
///
/// # Safety
/// As [`this_cpu_add_u64`].
#[inline]
pub unsafe fn this_cpu_add_imm_u64<const DELTA: i32>(ptr: *mut u64) {
    // SAFETY: the caller's contract.
    unsafe { this_cpu_add_u64_at(ptr, percpu_base(), DELTA as i64 as u64) }
}

/// Masks this core's interrupts and returns the previous state (1: masked).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn local_irq_save() -> u64 {
    irq::mask()
}

/// Restores the state [`local_irq_save`] returned; unmasking takes the pending interrupts.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn local_irq_restore(flags: u64) {
    irq::restore(flags)
}

/// Unmasks this core's interrupts (and takes the pending ones).
///
/// Context: task only, not an interrupt handler; never blocks.
#[inline]
pub fn local_irq_enable() {
    irq::restore(0)
}

/// Whether this core's interrupts are masked.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn irqs_disabled() -> bool {
    irq::masked()
}

/// Whether this core runs an interrupt handler (a call from another core, or the tick).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn in_interrupt() -> bool {
    irq::in_handler()
}

pub use crate::irq_guard::IrqGuard;
