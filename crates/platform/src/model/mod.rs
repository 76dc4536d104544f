//! The platform under loom: what `arch`, `percpu` and the kernel services are on AArch64, here
//! loom's atomics, fences and threads. Each loom thread stands for one core and owns its per-core
//! slots; the model's main thread is core 0 and [`spawn_cpu`] starts the others. An interrupt is a handler the
//! model runs on a core's thread between the registered entry and exit hooks ([`irq`], or
//! [`raise_irq`] to take it at that core's next barrier). Where this differs from ARMv8 is below.
//!
//! Negative controls: a barrier the primitives label in code ([`smp_mb!`](crate::smp_mb!),
//! [`ordering!`](crate::ordering!), [`grace_period!`](crate::grace_period!)) records its label
//! and its caller's file (`#[track_caller]`), and [`omit_barrier`] / [`omit_grace_period`] name
//! one by file and label to be left out of the following model runs: a fence is skipped, an
//! Acquire/Release access becomes Relaxed, a grace period is empty.
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
//!   (Relaxed), so the model's `this_cpu_add_u64` starts with an Acquire fence, which orders
//!   every earlier load, not only the word's.
//! * A release store (`stlr`) followed by an acquire load (`ldar`) of another location is
//!   ordered on ARMv8 (RCsc) but not in C11 (where only SeqCst is). The model errs weak here: it
//!   can report a reordering that ARMv8 forbids; none of the primitives relies on this order.
//! * loom does not model load buffering (a load reading a store that comes later in program
//!   order on another thread), which ARMv8 allows. A barrier whose only job is to forbid load
//!   buffering cannot be shown to be needed by the model.
//! * The per-core add (`this_cpu_add`) is a restartable load-add-store on the firmware, atomic
//!   against this core's interrupts but not an exclusive access. In the model it is a relaxed
//!   load and store (`PercpuBox::this_cpu_add`, percpu_ref's `this_cpu_add_u64`), since other
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
//!
//! The model is split by concern: `cores.rs` (the cores and their threads, the idle hooks, the
//! counter and logging), `irq.rs` (interrupts), `barrier.rs` (barriers and the negative controls
//! that leave one out), `atomic.rs` (the atomics), `percpu.rs` (per-core storage and statics) and
//! `wait.rs` (waits, locks and IPIs).

mod atomic;
mod barrier;
mod cores;
mod irq;
mod percpu;
mod wait;

pub use atomic::*;
pub use barrier::*;
pub use cores::*;
pub use irq::*;
pub use percpu::*;
pub use wait::*;

pub use core::sync::atomic::Ordering;

/// The ordering of a load whose result is dereferenced (`rcu_dereference`): Relaxed, as on the
/// firmware (the models initialise every object before the readers start; see above for the
/// address dependency C11 lacks).
pub const DEREF_ORDERING: Ordering = Ordering::Relaxed;

// The execution contexts are the platform's own: a model's core thread makes its `Ctx`
// (`unsafe { Ctx::new() }` at the start of the thread), interrupt handlers and RCU callbacks get
// an `&AtomicCtx`.
pub use crate::ctx::{AtomicCtx, Ctx};
