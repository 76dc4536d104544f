//! Grace periods: snapshots and requests, starting and completing them (any core may complete
//! one), `synchronize_rcu` and the polling API, and optional grace-period timing.

use super::qs::{callbacks_while_waiting, eqs_enter, eqs_exit, might_block, not_in_callback};
use super::{gp_lock, gp_try_lock, CPUS, DONE, GP_SEQ, REQUESTED, STARTED};
use crate::machine::{self, ipi, smp_mb, AtomicBool, AtomicU64, Ordering};

machine::global! {
    /// Counter value when the current grace period started, and the sum of completed durations.
    static GP_START_TIME: AtomicU64 = AtomicU64::new(0);
    static GP_TOTAL_TICKS: AtomicU64 = AtomicU64::new(0);
    static GP_TIMED: AtomicU64 = AtomicU64::new(0);
    /// Whether grace periods are timed (two counter reads per grace period, which cost ~100 ns
    /// each under QEMU; off by default). The stall detector does not need it: the tick notes
    /// when it first sees each grace period.
    static GP_TIMING: AtomicBool = AtomicBool::new(false);
}

/// Turns grace-period timing (for [`average_gp_ns`]) on or off, and resets the figures.
pub fn set_gp_timing(on: bool) {
    let _l = gp_lock();
    GP_TOTAL_TICKS.store(0, Ordering::Relaxed);
    GP_TIMED.store(0, Ordering::Relaxed);
    // A grace period in progress was not timed from its start: it is skipped by restarting
    // the clock now (its duration is undercounted by at most the time already elapsed).
    GP_START_TIME.store(machine::counter_relaxed(), Ordering::Relaxed);
    GP_TIMING.store(on, Ordering::Relaxed);
}

/// The grace period a caller needs: the next one to start (Linux's `rcu_seq_snap`).
pub(super) fn snapshot() -> u64 {
    // D: the caller's updates (e.g. a list removal) are ordered before the snapshot; pairs with
    // C in rcu_qs()/eqs_exit() through the grace period the snapshot selects.
    smp_mb();
    STARTED.load(Ordering::Relaxed) + 1
}

/// Records that grace period `g` is needed, starting it if none is in progress. Safe in an
/// interrupt handler (GP_LOCK's holders run with interrupts masked).
pub(super) fn request(g: u64) {
    if REQUESTED.load(Ordering::Relaxed) >= g && STARTED.load(Ordering::Relaxed) >= g {
        return; // already requested and started: the completer's chain covers it
    }
    let _l = gp_lock();
    if REQUESTED.load(Ordering::Relaxed) < g {
        REQUESTED.store(g, Ordering::Relaxed); // under GP_LOCK
    }
    start_if_requested();
}

/// Starts the next grace period if none is in progress and one is requested (GP_LOCK held).
fn start_if_requested() {
    let s = STARTED.load(Ordering::Relaxed);
    if s == DONE.load(Ordering::Relaxed) && s < REQUESTED.load(Ordering::Relaxed) {
        gp_start(s + 1);
    }
}

/// Starts grace period `g` (with GP_LOCK held).
fn gp_start(g: u64) {
    if GP_TIMING.load(Ordering::Relaxed) {
        GP_START_TIME.store(machine::counter_relaxed(), Ordering::Relaxed);
    }
    STARTED.store(g, Ordering::Relaxed);
    bump_gp_seq();
    smp_mb(); // D: the new STARTED (and what preceded it) before any core's ctr is read; pairs with C
}

/// Tells the cores' quiescent-state fast path that STARTED or DONE has changed (GP_LOCK held).
fn bump_gp_seq() {
    // Q: Release orders the STARTED or DONE store just made before the new GP_SEQ; pairs with
    // the Acquire load in rcu_quiescent_state_slow().
    GP_SEQ.store(GP_SEQ.load(Ordering::Relaxed) + 1, Ordering::Release);
}

/// Completes the grace period in progress if every core has passed a quiescent state (or is
/// idle). Returns whether a grace period completed.
pub fn gp_try_complete() -> bool {
    try_complete(false)
}

/// `from_irq`: only try-lock GP_LOCK (an interrupt handler should not spin on it).
pub(super) fn try_complete(from_irq: bool) -> bool {
    let mut completed = false;
    // After completing g, the next grace period may already be requested and, with every core
    // idle, nobody else would look at it before the next tick: try it too.
    while complete_one(from_irq) {
        completed = true;
    }
    completed
}

fn complete_one(from_irq: bool) -> bool {
    // D': Acquire, so the ctr reads below are ordered after seeing grace period g start (this
    // core may not be the one that started it); pairs with C through D on the starting core.
    let g = STARTED.load(Ordering::Acquire);
    if g == DONE.load(Ordering::Relaxed) {
        return false;
    }
    let skip = injected_skip_core();
    for cpu in machine::online_cpus() {
        let v = CPUS[cpu].ctr.load(Ordering::Relaxed);
        if v != 0 && v != g && Some(cpu) != skip {
            return false;
        }
    }
    smp_mb(); // B: the quiescent states read above are ordered before DONE; pairs with A

    // From the tick or an IRQ exit, do not spin: whoever holds the lock completes it, or a
    // later tick does.
    let l = if from_irq {
        match gp_try_lock() {
            Some(l) => l,
            None => return false,
        }
    } else {
        gp_lock()
    };
    if STARTED.load(Ordering::Relaxed) != g || DONE.load(Ordering::Relaxed) >= g {
        return false;
    }
    if GP_TIMING.load(Ordering::Relaxed) {
        let took = machine::counter_relaxed().wrapping_sub(GP_START_TIME.load(Ordering::Relaxed));
        GP_TOTAL_TICKS.store(GP_TOTAL_TICKS.load(Ordering::Relaxed) + took, Ordering::Relaxed); // under GP_LOCK
        GP_TIMED.store(GP_TIMED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    DONE.store(g, Ordering::Release);
    bump_gp_seq();
    start_if_requested();
    drop(l);
    smp_mb(); // E: DONE is visible before the idle cores' wake requests are read; pairs with E in idle_enter
    for cpu in machine::online_cpus() {
        let w = CPUS[cpu].wake_for_gp.load(Ordering::Relaxed);
        if w != 0
            && w <= g
            && CPUS[cpu].wake_for_gp.compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            ipi::send(cpu, ipi::Ipi::Wake);
        }
    }
    true
}

/// Fault injection (`--features inject-gp-skip-core`, never in normal builds): grace periods
/// do not wait for the highest-numbered online core, so its readers are unprotected. The
/// torture's reader pipe must catch it.
#[inline(always)]
fn injected_skip_core() -> Option<usize> {
    if cfg!(feature = "inject-gp-skip-core") && machine::num_online() > 1 {
        machine::online_cpus().last()
    } else {
        None
    }
}

/// Waits for a full grace period: returns once every core that was not idle when it was called
/// has passed a quiescent state, so every read-side section that began before has ended. The
/// caller counts as quiescent while it waits; concurrent callers share grace periods.
pub fn synchronize_rcu() {
    might_block("synchronize_rcu");
    not_in_callback("synchronize_rcu");
    let g = snapshot();
    request(g);
    eqs_enter();
    while DONE.load(Ordering::Acquire) < g {
        if !gp_try_complete() {
            callbacks_while_waiting();
            machine::cpu_relax();
        }
    }
    eqs_exit();
}

/// Starts (if needed) the grace period that covers readers running now and returns a cookie for
/// [`poll_state_synchronize_rcu`] (Linux's `start_poll_synchronize_rcu`).
pub fn start_poll_synchronize_rcu() -> u64 {
    let g = snapshot();
    request(g);
    g
}

/// Whether the grace period behind `cookie` has completed.
pub fn poll_state_synchronize_rcu(cookie: u64) -> bool {
    DONE.load(Ordering::Acquire) >= cookie
}

/// Grace periods completed so far.
pub fn completed() -> u64 {
    DONE.load(Ordering::Acquire)
}

/// Grace periods started so far.
pub fn started() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

/// Average duration of the grace periods completed while timing was on, in ns (counter time).
pub fn average_gp_ns() -> u64 {
    machine::ticks_to_ns(GP_TOTAL_TICKS.load(Ordering::Relaxed)) / GP_TIMED.load(Ordering::Relaxed).max(1)
}
