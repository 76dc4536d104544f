//! The stall detector: one core per tick period names a core that holds up a grace period for
//! too long (grace periods need no push from the tick: the last report completes one).

use super::{tree, CPUS, DONE, STARTED};
use crate::machine::{self, cpu_id, ipi, AtomicU64, Ordering};

machine::global! {
    static STALL_TIMEOUT_MS: AtomicU64 = AtomicU64::new(3000);
    static STALLS: AtomicU64 = AtomicU64::new(0);
    static LAST_STALLED: AtomicU64 = AtomicU64::new(u64::MAX);
    /// `g << 10 | core` of the last stall its own core's scan left to another core's tick.
    static SELF_DEFERRED: AtomicU64 = AtomicU64::new(0);
    /// The grace period the tick last saw in progress (for stall timing).
    static TICK_SEEN_GP: AtomicU64 = AtomicU64::new(0);
    static TICK_SEEN_AT: AtomicU64 = AtomicU64::new(0);
}

/// Sets how long a core may go without a quiescent state during a grace period before it is
/// reported.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn set_stall_timeout_ms(ms: u64) {
    STALL_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// Stalls reported so far, and the last core named.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn stalls() -> (u64, Option<usize>) {
    let c = LAST_STALLED.load(Ordering::Relaxed);
    (STALLS.load(Ordering::Relaxed), (c != u64::MAX).then_some(c as usize))
}

machine::global! {
    /// Counter time at or after which the next scan is due: one core scans per tick period, not
    /// every core on every tick (the scan is O(N); N scans per tick period would be O(N^2)).
    static NEXT_SCAN: AtomicU64 = AtomicU64::new(0);
}

/// The tick hook, on every core: whichever core's tick first finds a scan due claims it (one
/// load on the other ticks). Any core may scan, so a core that stalls with interrupts masked
/// (whose own tick never runs) is still named by the others.
pub(super) fn tick(_ctx: &machine::AtomicCtx) {
    let now = machine::counter_relaxed();
    let due = NEXT_SCAN.load(Ordering::Relaxed);
    if now < due {
        return;
    }
    let period = machine::counter_freq() / u64::from(machine::tick_hz().max(1));
    // Relaxed: the claim only elects one scanner per period; the scan reads nothing the
    // claim's writer published.
    if NEXT_SCAN.compare_exchange(due, now + period, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        return;
    }
    scan(now);
}

/// Notes when each core last changed `ctr`, and names a core that has held up the grace period
/// in progress for too long. O(N), once per tick period machine-wide.
fn scan(now: u64) {
    // Sample every core's ctr: the time it last changed is when it last passed a quiescent
    // state or changed idle state (to within a tick period).
    for cpu in machine::online_cpus() {
        let c = CPUS.remote(cpu);
        let v = c.ctr.load(Ordering::Relaxed);
        if c.seen_ctr.swap(v, Ordering::Relaxed) != v {
            c.seen_at.store(now, Ordering::Relaxed);
        }
    }
    let g = STARTED.load(Ordering::Relaxed);
    if g == DONE.load(Ordering::Relaxed) {
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
    // Only the cores the tree still waits for (a leaf lock per owing leaf).
    tree::for_each_owing(g, |cpu| {
        let c = CPUS.remote(cpu);
        let since = now.saturating_sub(c.seen_at.load(Ordering::Relaxed));
        if since < limit {
            return;
        }
        let key = g << 10 | me as u64; // MAX_CPUS <= 1024
        if cpu == me && machine::num_online() > 1 && SELF_DEFERRED.swap(key, Ordering::Relaxed) != key {
            // The scanning core cannot interrupt itself for its PC (this runs in its tick
            // handler): make the next scan due now, for another core's tick to claim first.
            // Once only: idle cores take no tick, so if this core's next tick scans again, no
            // other core is ticking, and it names itself.
            NEXT_SCAN.store(0, Ordering::Relaxed);
            return;
        }
        if c.stall_reported.swap(g, Ordering::Relaxed) == g {
            return; // once per stall
        }
        STALLS.fetch_add(1, Ordering::Relaxed);
        LAST_STALLED.store(cpu as u64, Ordering::Relaxed);
        // The scanning core may be the stalled one (alone, or the only one ticking): no PC
        // then (0).
        let pc = if cpu == me { 0 } else { ipi::report_pc(cpu, 20).unwrap_or(0) };
        machine::error!(
            "RCU stall: core {}, grace period {}, last quiescent state {} ms ago, PC={:#x}",
            cpu,
            g,
            machine::ticks_to_ns(since) / 1_000_000,
            pc
        );
    });
}
