//! The stall detector: the tick hook pushes grace periods along and names a core that holds
//! one up for too long.

use super::gp::try_complete;
use super::{CPUS, DONE, STARTED};
use crate::machine::{self, cpu_id, ipi, AtomicU64, Ordering};

machine::global! {
    static STALL_TIMEOUT_MS: AtomicU64 = AtomicU64::new(3000);
    static STALLS: AtomicU64 = AtomicU64::new(0);
    static LAST_STALLED: AtomicU64 = AtomicU64::new(u64::MAX);
    /// The grace period the tick last saw in progress (for stall timing).
    static TICK_SEEN_GP: AtomicU64 = AtomicU64::new(0);
    static TICK_SEEN_AT: AtomicU64 = AtomicU64::new(0);
}

/// Sets how long a core may go without a quiescent state during a grace period before it is
/// reported.
pub fn set_stall_timeout_ms(ms: u64) {
    STALL_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// Stalls reported so far, and the last core named.
pub fn stalls() -> (u64, Option<usize>) {
    let c = LAST_STALLED.load(Ordering::Relaxed);
    (STALLS.load(Ordering::Relaxed), (c != u64::MAX).then_some(c as usize))
}

/// The tick hook: push a grace period along, and name a core that holds one up for too long.
pub(super) fn tick() {
    let now = machine::counter_relaxed();
    // Sample every core's ctr: the time it last changed is when it last passed a quiescent
    // state or changed idle state (to within a tick).
    for cpu in machine::online_cpus() {
        let c = &CPUS[cpu];
        let v = c.ctr.load(Ordering::Relaxed);
        if c.seen_ctr.swap(v, Ordering::Relaxed) != v {
            c.seen_at.store(now, Ordering::Relaxed);
        }
    }
    let g = STARTED.load(Ordering::Relaxed);
    if g == DONE.load(Ordering::Relaxed) || try_complete(true) {
        return;
    }
    if TICK_SEEN_GP.swap(g, Ordering::Relaxed) != g {
        TICK_SEEN_AT.store(now, Ordering::Relaxed);
    }
    let limit = machine::counter_freq() * STALL_TIMEOUT_MS.load(Ordering::Relaxed) / 1000;
    // Timestamps written by other cores after `now` was read make these differences negative:
    // saturate to 0 (not stalled) rather than wrap.
    if now.saturating_sub(TICK_SEEN_AT.load(Ordering::Relaxed)) < limit {
        return;
    }
    let me = cpu_id();
    for cpu in machine::online_cpus() {
        let c = &CPUS[cpu];
        let v = c.ctr.load(Ordering::Relaxed);
        if v == 0 || v == g || cpu == me {
            continue;
        }
        let since = now.saturating_sub(c.seen_at.load(Ordering::Relaxed));
        if since < limit {
            continue;
        }
        if c.stall_reported.swap(g, Ordering::Relaxed) == g {
            continue; // once per stall
        }
        STALLS.fetch_add(1, Ordering::Relaxed);
        LAST_STALLED.store(cpu as u64, Ordering::Relaxed);
        let pc = ipi::report_pc(cpu, 20).unwrap_or(0);
        machine::println!(
            "RCU stall: core {}, grace period {}, last quiescent state {} ms ago, PC={=u64:#x}",
            cpu,
            g,
            machine::ticks_to_ns(since) / 1_000_000,
            pc
        );
    }
}
