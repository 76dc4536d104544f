//! The platform interface of quiescent's primitives: what RCU, percpu-rwsem and percpu_ref need
//! from a machine, defined once.
//!
//! A kernel that wants the primitives provides a machine through this crate:
//!
//! * **Fast paths, inlined** and chosen at compile time ([`arch`], [`percpu`](mod@percpu)): barriers
//!   (`smp_mb` over `dmb ish` ...), the per-cpu base register and the restartable per-core add
//!   (Linux's `this_cpu_add`, three instructions), interrupt masking, the counter. Never through
//!   a function pointer: a reader's fast path costs what it costs in Linux.
//! * **State every kernel needs the same way**, kept here: the online and possible cores
//!   ([`cpu`]), per-core storage ([`percpu!`], [`percpu_shared!`], [`PercpuBox`]), the execution
//!   contexts ([`Ctx`], [`AtomicCtx`]), and the waits ([`wait_event`], [`Completion`]).
//! * **Registration points** ([`IdleHooks`], [`set_irq_context_hooks`], [`add_tick_hook`]):
//!   RCU registers what the kernel's idle loop, blocking waits, interrupt entry and tick call. A
//!   lower layer never names a higher one.
//! * **Cold services, bound at link time** ([`Kernel`], [`kernel!`]): waking a core, running a
//!   function on another core, a stalled core's PC, a diagnostic line.
//!
//! Three machines implement it, chosen by the target:
//!
//! * **AArch64 bare metal** (`target_os = "none"`): the firmware's, and any kernel's on ARMv8.
//! * **The host** (any other ELF target, e.g. `x86_64-unknown-linux-gnu`): the `host` module
//!   runs threads as cores, with the same per-cpu areas, hooks, waits and primitives, so the
//!   crates' doc examples and tests run under `cargo test`.
//! * **The loom model** (`--cfg loom`): for the [loom](https://docs.rs/loom) model checker; each
//!   loom thread is a core (`spawn_cpu`), atomics and fences are loom's, and a negative control
//!   can leave one labelled barrier out.
//!
//! # Contexts
//! In QSBR every instruction between two quiescent points is a reader, so the points must be
//! visible to the borrow checker: everything that may pass one takes `&mut Ctx`; a read guard
//! borrows the context shared; interrupt handlers and RCU callbacks get `&AtomicCtx`, which
//! reads but cannot block. Only the kernel makes contexts (`unsafe`), where a thread of
//! execution starts on a core.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(loom)]
extern crate std;

mod ctx;
pub use ctx::{AtomicCtx, Ctx, IdleHooks};

/// How serious a diagnostic line is ([`Kernel::log`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Information the user asked for.
    Info,
    /// A misuse the primitive caught and refused.
    Warn,
    /// A bug that breaks what the primitive promises (a release that ran twice).
    Error,
}

/// A diagnostic line through the kernel's [`Kernel::log`]: `println!("rcu: {} leaves", n)`.
#[macro_export]
macro_rules! println {
    ($($t:tt)*) => { $crate::log($crate::Level::Info, format_args!($($t)*)) };
}

/// A warning line (a misuse the primitive refused), as [`println!`].
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log($crate::Level::Warn, format_args!($($t)*)) };
}

/// An error line (a broken promise), as [`println!`].
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log($crate::Level::Error, format_args!($($t)*)) };
}

/// `smp_mb()` with the barrier's label in code: `smp_mb!("A@rcu_qs"); // A: ... pairs with B`.
/// On a machine it is `smp_mb()`; the loom model's negative controls name a barrier by its file
/// and this label to leave it out (a label in code, not in a comment that rustfmt may move).
#[macro_export]
macro_rules! smp_mb {
    ($label:literal) => {
        $crate::smp_mb_labelled($label)
    };
}

/// An atomic access's ordering with the barrier's label in code:
/// `x.load(ordering!(Acquire, "Q"))`. On a machine it is the ordering; the loom model's
/// negative controls can make the labelled access Relaxed.
#[macro_export]
macro_rules! ordering {
    ($o:ident, $label:literal) => {
        $crate::labelled_ordering(core::sync::atomic::Ordering::$o, $label)
    };
}

/// Labels the next `call_rcu` or `synchronize_rcu` on this core: `grace_period!("G", expr)`.
/// On a machine it is `expr`; the loom model's negative controls can make that grace period
/// empty (its RCU stand-in runs the callback, or returns, at once).
#[macro_export]
macro_rules! grace_period {
    ($label:literal, $e:expr) => {{
        $crate::label_grace_period($label);
        $e
    }};
}

#[doc(hidden)]
pub mod __private {
    pub use alloc::boxed::Box;
    #[cfg(loom)]
    pub use loom;
}

// ---------------------------------------------------------------------------------------------
// AArch64.
// ---------------------------------------------------------------------------------------------

#[cfg(all(not(loom), target_os = "none", not(target_arch = "aarch64")))]
compile_error!("quiescent-platform: bare metal on AArch64 only (or the host machine, or the loom model)");

#[cfg(all(not(loom), not(target_os = "none")))]
extern crate std;

#[cfg(not(loom))]
#[cfg_attr(not(target_os = "none"), path = "host/arch.rs")]
pub mod arch;
#[cfg(not(loom))]
pub mod cpu;
#[cfg(not(loom))]
mod hooks;
#[cfg(all(not(loom), not(target_os = "none")))]
pub mod host;
#[cfg(not(loom))]
mod irq_guard;
#[cfg(not(loom))]
mod kernel;
#[cfg(not(loom))]
pub mod percpu;
#[cfg(not(loom))]
mod wait;

#[cfg(not(loom))]
pub use arch::{
    counter_freq, counter_relaxed, cpu_relax, in_interrupt, percpu_base, smp_mb, smp_rmb, smp_wmb, this_cpu_add_u32,
    this_cpu_add_u64, ticks_to_ns, tpidr, IrqGuard, PercpuBase, DEREF_ORDERING,
};
#[cfg(not(loom))]
pub use core::sync::atomic::{
    AtomicBool, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub use cpu::{num_online, num_possible, online_cpus, MAX_CPUS};
#[cfg(not(loom))]
pub use hooks::{
    add_tick_hook, idle_hooks, irq_context_hooks, run_tick_hooks, set_idle_hooks, set_irq_context_hooks, set_tick_hz,
    tick_hz, IrqContextHooks,
};
#[cfg(not(loom))]
pub use kernel::{ipi, log, Kernel};
#[cfg(not(loom))]
pub use percpu::{cpu_id, nr_areas, PercpuAllocError, PercpuBox};
#[cfg(not(loom))]
pub use spin::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub use wait::{wait_event, wake_up_all, Completion};

/// [`smp_mb!`]: the label is for the loom model only.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[cfg(not(loom))]
#[doc(hidden)]
#[inline(always)]
pub fn smp_mb_labelled(_label: &'static str) {
    arch::smp_mb()
}

/// [`ordering!`]: the label is for the loom model only.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[cfg(not(loom))]
#[doc(hidden)]
#[inline(always)]
pub const fn labelled_ordering(o: Ordering, _label: &'static str) -> Ordering {
    o
}

/// [`grace_period!`]: the label is for the loom model only.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[cfg(not(loom))]
#[doc(hidden)]
#[inline(always)]
pub fn label_grace_period(_label: &'static str) {}

/// A `static` the primitives keep: a plain `static` here; under loom, where atomics have no
/// `const` constructor and every execution starts afresh, a per-execution lazy value with the
/// same name and methods.
#[cfg(not(loom))]
#[macro_export]
macro_rules! global {
    ($($(#[$m:meta])* $v:vis static $name:ident: $t:ty = $init:expr;)+) => {$(
        $(#[$m])* $v static $name: $t = $init;
    )+};
}

/// A `static` array of `$n` elements, each `$init`:
/// `global_array! { static LEAVES: [Leaf; MAX_LEAVES] = Leaf {..}; }`. A plain `static` of
/// `[const { $init }; N]` here; under loom a per-execution lazy array, as [`global!`].
#[cfg(not(loom))]
#[macro_export]
macro_rules! global_array {
    ($(#[$m:meta])* $v:vis static $name:ident: [$t:ty; $n:expr] = $init:expr;) => {
        $(#[$m])* $v static $name: [$t; $n] = [const { $init }; $n];
    };
}

/// An array of atomics, `[T::new(v); N]`: a `const` block per element here, as a `static` would
/// be; under loom (no `const` constructor) built at run time.
#[cfg(not(loom))]
#[macro_export]
macro_rules! atomic_array {
    ($t:ident::new($v:expr); $n:expr) => {
        [const { $t::new($v) }; $n]
    };
}

// ---------------------------------------------------------------------------------------------
// The loom model.
// ---------------------------------------------------------------------------------------------

#[cfg(loom)]
pub mod ideal_rcu;
#[cfg(loom)]
mod model;
#[cfg(loom)]
pub use model::*;
