//! The seam between the synchronisation primitives and the machine. `sync::percpu_rwsem`,
//! `sync::rcu_sync` and `sync::percpu_ref` name the machine only through this module: its
//! atomics and fences, this core's id and the online cores, the per-core counter add, masking
//! interrupts, spinning and the idle/IPI wake-up.
//!
//! On the firmware it is DMB/DSB, `core` atomics and TPIDR_EL1 (the re-exports below, so the
//! compiled code is unchanged). The loom models in `model/` compile the same source files with
//! their own `crate::machine` (`model/src/machine.rs`): loom's atomics, fences and threads, one
//! loom thread standing for one core and owning its per-core slot. Nothing else in the
//! algorithms knows which of the two it is built against.
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
//!   against this core's interrupts but not an exclusive access. In the model each slot is
//!   written only by its own thread, so a relaxed `fetch_add` is equivalent; percpu_ref's
//!   `this_cpu_add_u32`, whose counters another core zeroes (`switch_to_percpu`), is a relaxed
//!   load and store in the model, so an add that races with the zeroing loses one of them
//!   there as it would on the hardware.
//! * Interrupts are not modelled: `IrqGuard` masks nothing in the model.
//! * loom itself is stronger than C11 in one place: it makes each SeqCst fence synchronise with
//!   every SeqCst fence that ran before it, in the order it happens to run them, and (as seen
//!   with barrier B) does not seem to try the other orders. A model whose threads meet only
//!   through fences can miss a bug; the model's RCU stand-in uses no fences for that reason.
//! * `wake_up_all` (`dsb ishst; sev`) and `wait_event` (`wfe`) are not modelled: a waiter in the
//!   model re-checks its condition after yielding to the other threads (a `Completion` blocks on
//!   a loom condition variable instead). WFE/SEV's lost-wake-up argument is therefore not
//!   checked.
pub use crate::arch::{cpu_relax, percpu_base, smp_mb, smp_rmb, smp_wmb, PercpuBase};
pub use crate::arch::{this_cpu_add_u32, tpidr, IrqGuard};
pub use crate::percpu::{cpu_id, PerCpuAllocError, PerCpuBox};
pub use crate::smp::{online_cpus, wait_event, wake_up_all, Completion};
pub use crate::MAX_CPUS;
pub use core::sync::atomic::{AtomicBool, AtomicI64, AtomicIsize, AtomicU32, AtomicU64, AtomicUsize, Ordering};
pub use spin::{Mutex, MutexGuard};

/// A `static` the algorithms keep. On the firmware a plain `static`; in the model, where loom's
/// atomics have no `const` constructor and every execution starts afresh, a per-execution lazy
/// value with the same name and methods.
macro_rules! global {
    ($(#[$m:meta])* $v:vis static $name:ident: $t:ty = $init:expr;) => {
        $(#[$m])* $v static $name: $t = $init;
    };
}
pub(crate) use global;

/// An array of atomics, `[T::new(v); N]`. On the firmware a `const` block per element, as a
/// `static` would be; in the model (no `const` constructor) built at run time.
macro_rules! atomic_array {
    ($t:ident::new($v:expr); $n:expr) => {
        [const { $t::new($v) }; $n]
    };
}
pub(crate) use atomic_array;
