//! The seam between the synchronisation primitives and the machine. `rcu`,
//! `sync::percpu_rwsem`, `sync::rcu_sync` and `sync::percpu_ref` name the machine only through
//! this module: its atomics and fences, this core's id and the online cores, per-core statics
//! and the per-core counter add, `static`s, spinning, IRQ masking, the interrupt-context query
//! and the registration of interrupt entry/exit hooks, the idle loop's hooks, IPIs and the tick.
//!
//! On the firmware it is DMB/DSB, `core` atomics, TPIDR_EL1, the GIC's SGIs and `spin`'s lock
//! (the re-exports below, so the compiled code is unchanged). The loom models in `model/` compile
//! the same source files with their own `crate::machine` (`model/src/machine.rs`): loom's
//! atomics, fences and threads, one loom thread standing for one core and owning its per-core
//! slots, an interrupt as a handler the model runs on that thread between the registered entry
//! and exit hooks. Nothing else in the algorithms knows which of the two it is built against.
//!
//! # Where the C11 model loom checks differs from ARMv8
//!
//! loom explores the C11 memory model, not ARMv8's. Each difference, and which way it errs:
//!
//! * `smp_mb` (`dmb ish`) is modelled as `fence(SeqCst)`. ARMv8's DMB ISH orders every earlier
//!   access before every later one, which for the store-buffering pairs (A/D, B/C) is what a
//!   SeqCst fence gives in C11. Faithful for the patterns used here.
//! * `smp_rmb` (`dmb ishld`) is modelled as `fence(Acquire)` and `smp_wmb` (`dmb ishst`) as
//!   `fence(Release)`. DMB ISHLD orders earlier loads before later loads *and stores*, like an
//!   acquire fence; DMB ISHST orders only stores before stores, weaker than a release fence
//!   (which also orders earlier loads before later stores). So the model errs on the permissive
//!   side for `smp_wmb`: a missing load->store order behind an `smp_wmb` is not caught.
//! * An address dependency (`rcu_dereference`: load a pointer, then load through it) orders the
//!   second load on ARMv8 for free. C11 has no dependency ordering (`consume` is promoted to
//!   acquire), so the model must make such a load Acquire, which is stronger than the hardware:
//!   a bug that only a plain (non-dependent) load would expose is not caught. percpu_ref's fast
//!   path is the same pattern: it adds to the counter whose address is the word it loaded
//!   (Relaxed), so the model's `this_cpu_add_u32` starts with an Acquire fence, which orders
//!   every earlier load, not only the word's.
//! * A release store (`stlr`) followed by an acquire load (`ldar`) of another location is
//!   ordered on ARMv8 (RCsc) but not in C11 (where only SeqCst is). The model errs weak here: it
//!   can report a reordering that ARMv8 forbids; none of the primitives relies on this order.
//! * loom does not model load buffering (a load reading a store that comes later in program
//!   order on another thread), which ARMv8 allows. A barrier whose only job is to forbid load
//!   buffering cannot be shown to be needed by the model.
//! * The per-core add (`this_cpu_add`) is a restartable load-add-store on the firmware, atomic
//!   against this core's interrupts but not an exclusive access. In the model it is a relaxed
//!   load and store (`PerCpuBox::this_cpu_add`, percpu_ref's `this_cpu_add_u32`), since other
//!   cores zero these counters (percpu-rwsem's fold, percpu_ref's `switch_to_percpu`): an add
//!   that raced with the zeroing would lose one of them there as it would on the hardware.
//! * loom itself is stronger than C11 in one place: it makes each SeqCst fence synchronise with
//!   every SeqCst fence that ran before it, in the order it runs them (C11's SeqCst fences order
//!   which stores later loads may read, but create no happens-before). A barrier whose order
//!   another barrier on a later path gives again (transitively, through any core's SeqCst fence)
//!   cannot be shown to be needed; `model/tests/rcu.rs` names RCU's barriers this hides.
//! * loom switches threads only at its own operations where its search finds conflicting
//!   accesses, and a fence is neither: a fence right after a store would always run with it. The
//!   model's `smp_mb` therefore first stores to a word nothing reads (a switch point that
//!   conflicts with every other core's barriers, so loom runs two cores' barriers in both
//!   orders, and that synchronises with nothing).
//! * Interrupts: a handler runs on its core's loom thread between the registered entry and exit
//!   hooks, at a point the model chooses (between two statements, or at the core's next
//!   `smp_mb`, before or after the fence); loom does not inject them anywhere else.
//! * `wake_up_all` (`dsb ishst; sev`) and `wait_event` (`wfe`): the model's waiter reads a count
//!   of wake-ups, checks its condition, and sleeps on a loom condition variable until the count
//!   moves (WFE's event latch), so a change nobody wakes the waiter for is a deadlock loom
//!   reports. On the firmware the next interrupt would end such a `wfe`: a lost wake-up there is
//!   a delay, which the model treats as a bug.
pub use crate::arch::exception::set_irq_context_hooks;
pub use crate::arch::{
    counter_freq, counter_relaxed, cpu_relax, in_interrupt, percpu_base, smp_mb, smp_rmb, smp_wmb, this_cpu_add_u32,
    ticks_to_ns, tpidr, IrqGuard, PercpuBase,
};
pub use crate::percpu::{cpu_id, nr_areas, PerCpuAllocError, PerCpuBox};
pub use crate::smp::tick::{add_hook as add_tick_hook, hz as tick_hz};
pub use crate::smp::{
    num_online, num_possible, online_cpus, set_idle_hooks, wait_event, wake_up_all, AtomicCtx, Completion, Ctx,
    IdleHooks,
};
pub use crate::MAX_CPUS;
pub use core::sync::atomic::{
    AtomicBool, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
pub use defmt::println;
pub use spin::{Mutex, MutexGuard};

/// Inter-processor interrupts: the wake-up, running a function on another core, and fetching a
/// core's PC for a stall report.
pub mod ipi {
    pub use crate::smp::ipi::{call_function_single, report_pc, send, Ipi};
}

/// Per-core statics, `percpu! { static NESTING: u32 = 0; }`: on the firmware the `.percpu`
/// template of [`crate::percpu!`] (each core's copy at `&template + TPIDR_EL1`); in the model one
/// slot per loom thread.
macro_rules! percpu {
    ($($t:tt)*) => {
        $crate::percpu! { $($t)* }
    };
}
pub(crate) use percpu;

/// Per-core statics that other cores read too (Linux's per-cpu `rcu_data`):
/// `percpu_shared! { static CPUS: RcuCpu = RcuCpu { .. }; }`, reached as `CPUS.local()` (this
/// core's) and `CPUS.remote(cpu)`. On the firmware a [`crate::percpu!`] variable, so it lives in
/// each core's per-cpu area, which exists only for the cores present; in the model a
/// per-execution lazy array, one element per modelled core.
macro_rules! percpu_shared {
    ($($t:tt)*) => {
        $crate::percpu_shared! { $($t)* }
    };
}
pub(crate) use percpu_shared;

/// A `static` the algorithms keep. On the firmware a plain `static`; in the model, where loom's
/// atomics have no `const` constructor and every execution starts afresh, a per-execution lazy
/// value with the same name and methods.
macro_rules! global {
    ($($(#[$m:meta])* $v:vis static $name:ident: $t:ty = $init:expr;)+) => {$(
        $(#[$m])* $v static $name: $t = $init;
    )+};
}
pub(crate) use global;

/// A `static` array of `$n` elements, each `$init`: `global_array! { static LEAVES: [Leaf; MAX_LEAVES] = Leaf {..}; }`.
/// On the firmware a plain `static` of `[const { $init }; N]`; in the model a per-execution lazy
/// array, as [`global!`].
macro_rules! global_array {
    ($(#[$m:meta])* $v:vis static $name:ident: [$t:ty; $n:expr] = $init:expr;) => {
        $(#[$m])* $v static $name: [$t; $n] = [const { $init }; $n];
    };
}
pub(crate) use global_array;

/// An array of atomics, `[T::new(v); N]`. On the firmware a `const` block per element, as a
/// `static` would be; in the model (no `const` constructor) built at run time.
macro_rules! atomic_array {
    ($t:ident::new($v:expr); $n:expr) => {
        [const { $t::new($v) }; $n]
    };
}
pub(crate) use atomic_array;
