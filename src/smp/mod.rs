//! Core bring-up, the per-core idle loop, and cross-core work.
//!
//! After bring-up every core but 0 runs `idle_loop`: run the work queued for it, one item at a
//! time, and sleep with WFI when there is none. Any core queues work for any other with
//! [`queue_work`], which sends a Wake IPI if the target sleeps; the wake-up cannot be lost (see
//! `idle_loop`). [`call_on`] runs a function on another core and
//! waits for its result (Linux's `smp_call_function_single`); [`on_each_cpu`] runs one everywhere.
//!
//! The loop reaches the layer above (RCU) only through the hooks that layer installs with
//! [`set_idle_hooks`]: a quiescent point between work items (nothing of the previous item is
//! still in use), idle enter/exit around the sleep, the blocking wait, and a core coming online
//! or parking for good. This layer never names RCU.
//!
//! Bring-up is in `bringup.rs`, the idle loop and shutdown in `idle.rs`, the work queues in
//! `work.rs`; this file reports the cores and re-exports.

use crate::arch;
use crate::MAX_CPUS;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

mod bringup;
mod idle;
pub mod ipi;
mod kernel;
pub mod tick;
mod work;

pub(crate) use bringup::{boot_cpu_online, boot_secondaries, init, limit_cpus, plan_cpus, secondary_online};
pub use bringup::{cpu_limit, set_default_tick_hz, DEFAULT_TICK_HZ};
pub(crate) use idle::park;
pub use idle::{exit, is_sleeping, items_run, quiescent_point, shutdown, wakeups, EXIT_NOT_PARKED};
pub use work::{call_on, on_each_cpu, queue_work};

pub use quiescent_platform::cpu::{is_online, num_online, num_possible, online_cpus};
pub use quiescent_platform::{set_idle_hooks, wait_event, wake_up_all, AtomicCtx, Completion, Ctx, IdleHooks};

/// Cores the board listed (may exceed what this run uses).
static LISTED: AtomicUsize = AtomicUsize::new(1);
/// MPIDR of each logical core (8 bytes per core of MAX_CPUS: 4 KiB).
static MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Cores the board described (DTB `/cpus` or the board's fixed count).
pub fn num_listed() -> usize {
    LISTED.load(Ordering::Relaxed)
}

/// MPIDR of logical core `cpu` (PSCI `CPU_ON`'s target, the SGI routing of its GIC).
pub fn mpidr_of(cpu: usize) -> u64 {
    MPIDR[cpu].load(Ordering::Relaxed)
}

/// The logical core whose MPIDR affinity is `mpidr`, if this run set it up.
pub fn cpu_of_mpidr(mpidr: u64) -> Option<usize> {
    (0..num_possible()).find(|&c| MPIDR[c].load(Ordering::Relaxed) == mpidr)
}

fn wait_until(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = arch::counter();
    let limit = arch::counter_freq() * timeout_ms / 1000;
    while !done() {
        if arch::counter().wrapping_sub(start) > limit {
            return false;
        }
        arch::cpu_relax();
    }
    true
}
