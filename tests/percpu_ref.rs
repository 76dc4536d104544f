//! percpu_ref: release exactly once and only after the last put under concurrent get/put and a
//! kill from another core, tryget_live after the kill's confirmation, counts across mode switches
//! (with wrapped per-core counters), resurrect/reinit cycles, INIT_ATOMIC and INIT_DEAD, and every
//! reported misuse.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use quiescent::smp::Ctx;
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::{arch, rcu};

// The cases, by subject; `tests!` below lists them in the order they run.
#[path = "percpu_ref/irq.rs"]
mod irq;
#[path = "percpu_ref/kill.rs"]
mod kill;
#[path = "percpu_ref/lifecycle.rs"]
mod lifecycle;
#[path = "percpu_ref/misuse.rs"]
mod misuse;
use irq::*;
use kill::*;
use lifecycle::*;
use misuse::*;

/// Sequence numbers that order events across cores.
static SEQ: AtomicU64 = AtomicU64::new(1);
fn stamp() -> u64 {
    SEQ.fetch_add(1, Ordering::AcqRel)
}

/// What a ref's release and confirm callbacks did.
#[derive(Default)]
struct Probe {
    releases: AtomicU32,
    release_at: AtomicU64,
    confirms: AtomicU32,
    confirm_at: AtomicU64,
    /// Releases seen by the confirm callback when it ran (must be 0).
    releases_seen_by_confirm: AtomicU32,
}

impl Probe {
    fn releases(&self) -> u32 {
        self.releases.load(Ordering::Acquire)
    }
    fn confirms(&self) -> u32 {
        self.confirms.load(Ordering::Acquire)
    }
    /// A confirm callback recording itself.
    fn confirm(self: &Arc<Self>) -> impl FnOnce() + Send + 'static {
        let p = self.clone();
        move || {
            p.releases_seen_by_confirm.fetch_add(p.releases.load(Ordering::Acquire), Ordering::Relaxed);
            p.confirm_at.store(stamp(), Ordering::Relaxed);
            p.confirms.fetch_add(1, Ordering::Release);
        }
    }
}

fn new_ref(flags: Flags) -> (Arc<PercpuRef>, Arc<Probe>) {
    let p = Arc::new(Probe::default());
    let p2 = p.clone();
    let r = PercpuRef::init(
        move |_| {
            p2.release_at.store(stamp(), Ordering::Relaxed);
            p2.releases.fetch_add(1, Ordering::Release);
        },
        flags,
    )
    .expect("percpu_ref init");
    (r, p)
}

/// Waits until `cond`, failing after 5 s. Each turn is a quiescent point (so the grace period
/// being waited for can end) and runs this core's ready RCU callbacks: a switch started on core
/// 0 queues its callback here, and core 0 runs no idle loop while a case runs.
fn wait_until(ctx: &mut Ctx, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = arch::counter();
    while !cond() {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "{} did not happen within 5 s", what);
        rcu::rcu_quiescent_state(ctx);
        rcu::stats::gp_try_complete();
        arch::cpu_relax();
    }
}

/// Waits for every RCU callback queued so far (a late second release would run by then).
fn settle(ctx: &mut Ctx) {
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
}

quiescent::tests!(
    get_put_in_interrupt_handlers_on_a_quiescent_waiting_core_across_kill,
    starts_live_in_percpu_mode_and_kill_releases_once,
    concurrent_get_put_while_another_core_kills_releases_once_after_last_put,
    tryget_live_fails_on_every_core_once_kill_is_confirmed,
    counts_survive_switches_between_atomic_and_percpu,
    wrapped_percpu_counters_fold_to_the_right_count,
    resurrect_and_reinit_cycles,
    init_atomic_starts_in_atomic_mode,
    init_dead_starts_dead_at_zero,
    kill_and_confirm_calls_confirm_before_release,
    confirm_waits_for_a_core_inside_a_read_side_section,
    kill_twice_is_reported_and_ignored,
    put_below_zero_is_reported_and_leaves_the_ref_dead,
    reinit_misuse_returns_named_errors,
    switch_to_percpu_on_a_dying_ref_is_ignored,
    init_fails_cleanly_when_percpu_space_runs_out,
    exit_frees_the_percpu_counters,
    exit_keeps_the_counter_until_a_grace_period,
    percpu_obj_lives_until_its_last_counted_reference,
);
