//! Grace periods: snapshots and requests, starting and completing them (the core whose report
//! empties the tree's root completes one), `synchronize_rcu` and the polling API, and optional grace-period timing.

use super::qs::{callbacks_while_waiting, eqs_enter, eqs_exit, might_block, not_in_callback};
use super::{gp_lock, tree, CPUS, DONE, GP_SEQ, INITIALISED, REQUESTED, STARTED};
use crate::machine::{self, ipi, AtomicBool, AtomicU64, Ctx, Ordering};

machine::global! {
    /// Counter value when the current grace period started, and the sum of completed durations.
    static GP_START_TIME: AtomicU64 = AtomicU64::new(0);
    static GP_TOTAL_TICKS: AtomicU64 = AtomicU64::new(0);
    static GP_TIMED: AtomicU64 = AtomicU64::new(0);
    /// Whether grace periods are timed (two counter reads per grace period, which are not free;
    /// off by default). The stall detector does not need it: the tick notes when
    /// it first sees each grace period.
    static GP_TIMING: AtomicBool = AtomicBool::new(false);
}

/// Turns grace-period timing (for [`average_gp_ns`]) on or off, and resets the figures.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
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
    crate::machine::smp_mb!("D@snapshot");
    STARTED.load(Ordering::Relaxed) + 1
}

/// Records that grace period `g` is needed, starting it if none is in progress. Safe in an
/// interrupt handler (GP_LOCK's holders run with interrupts masked).
pub(super) fn request(g: u64) {
    if REQUESTED.load(Ordering::Relaxed) >= g {
        // Already requested (Linux's `rcu_start_this_gp` returns likewise when `gp_seq_needed`
        // covers it). A REQUESTED >= g was stored under GP_LOCK by a requester whose
        // `start_if_requested`, in the same critical section, started g, found it started, or
        // found a grace period in progress; the completion of that one takes GP_LOCK after it
        // and reads REQUESTED there, so it starts the next. No STARTED >= g test here: a fresh
        // snapshot (STARTED + 1) never meets it, so every `call_rcu` would take GP_LOCK.
        return;
    }
    // Every grace period starts from a request that gets here, and REQUESTED records it only
    // below: refused here, no grace-period state is left behind. (`call_rcu_head` has linked
    // its head by now: it stays queued and never runs, since without `init` no grace period
    // completes; its object is leaked.)
    if !INITIALISED.load(Ordering::Acquire) {
        not_initialised();
    }
    let l = gp_lock();
    if REQUESTED.load(Ordering::Relaxed) < g {
        REQUESTED.store(g, Ordering::Relaxed); // under GP_LOCK
    }
    let done = start_if_requested();
    drop(l);
    if let Some(d) = done {
        after_complete(d);
    }
}

/// Starts the next grace period if none is in progress and one is requested (GP_LOCK held).
/// A grace period whose set-up finds every core idle or past a quiescent state completes right
/// here, and the next requested one starts; returns the last one completed so (for the wake-ups
/// the caller sends once GP_LOCK is released).
fn start_if_requested() -> Option<u64> {
    let mut completed = None;
    loop {
        let s = STARTED.load(Ordering::Relaxed);
        if s != DONE.load(Ordering::Relaxed) || s >= REQUESTED.load(Ordering::Relaxed) {
            return completed;
        }
        if !gp_start(s + 1) {
            return completed;
        }
        finish(s + 1); // after B in tree::setup
        completed = Some(s + 1);
    }
}

/// Starts grace period `g` (with GP_LOCK held) and sets the tree up for it. Returns whether no
/// core owes a quiescent state (then the caller completes it).
fn gp_start(g: u64) -> bool {
    if GP_TIMING.load(Ordering::Relaxed) {
        GP_START_TIME.store(machine::counter_relaxed(), Ordering::Relaxed);
    }
    STARTED.store(g, Ordering::Relaxed);
    bump_gp_seq();
    // D: the new STARTED (and what preceded it) before the set-up reads ONLINE (pairs with O)
    // and the cores' ctr (pairs with C).
    crate::machine::smp_mb!("D@gp_start");
    tree::setup(g)
}

#[cold]
#[inline(never)]
fn not_initialised() -> ! {
    panic!("RCU used before rcu::init: no core reports quiescent states, so a grace period would wait for no reader")
}

/// Tells the cores' quiescent-state fast path that STARTED or DONE has changed (GP_LOCK held).
fn bump_gp_seq() {
    // Q: Release orders the STARTED or DONE store just made before the new GP_SEQ; pairs with
    // the Acquire load in rcu_quiescent_state_slow().
    GP_SEQ.store(GP_SEQ.load(Ordering::Relaxed) + 1, Ordering::Release);
}

/// Pushes the grace period in progress along: reports for every core found idle or already
/// past a quiescent state (O(N)), which completes it if those were the last. Nothing needs
/// this for progress (the set-up reports for the idle cores, and the last report completes a
/// grace period); tests call it. Returns whether a grace period completed meanwhile.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn gp_try_complete() -> bool {
    let before = DONE.load(Ordering::Relaxed);
    tree::force_pass();
    DONE.load(Ordering::Relaxed) != before
}

/// Completes grace period `g`, whose last quiescent state the tree has just collected (GP_LOCK
/// held, after B), and starts the next one if requested. Returns the last grace period
/// completed (`g`, or a later one whose set-up found nothing to wait for).
pub(super) fn complete_locked(g: u64) -> u64 {
    finish(g);
    start_if_requested().unwrap_or(g)
}

/// Publishes `g` as complete (GP_LOCK held, after B).
fn finish(g: u64) {
    debug_assert!(STARTED.load(Ordering::Relaxed) == g && DONE.load(Ordering::Relaxed) < g);
    if GP_TIMING.load(Ordering::Relaxed) {
        let took = machine::counter_relaxed().wrapping_sub(GP_START_TIME.load(Ordering::Relaxed));
        GP_TOTAL_TICKS.store(GP_TOTAL_TICKS.load(Ordering::Relaxed) + took, Ordering::Relaxed); // under GP_LOCK
        GP_TIMED.store(GP_TIMED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    DONE.store(g, Ordering::Release);
    bump_gp_seq();
}

/// After completing grace periods up to `g` (GP_LOCK released): wakes the idle cores whose
/// callbacks they made ready. One O(N) pass per completion, by the completer only.
pub(super) fn after_complete(g: u64) {
    crate::machine::smp_mb!("E"); // E: DONE is visible before the idle cores' wake requests are read; pairs with E in idle_enter
    for cpu in machine::online_cpus() {
        let w = CPUS.remote(cpu).wake_for_gp.load(Ordering::Relaxed);
        if w != 0
            && w <= g
            && CPUS.remote(cpu).wake_for_gp.compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            ipi::send(cpu, ipi::Ipi::Wake);
        }
    }
}

/// Fault injection (`--features inject-gp-skip-core`, never in normal builds): grace periods
/// do not wait for the highest-numbered online core (the tree's set-up leaves its bit out), so
/// its readers are unprotected. The
/// torture's reader pipe must catch it.
#[inline(always)]
pub(super) fn injected_skip_core() -> Option<usize> {
    if cfg!(quiescent_inject = "gp-skip-core") && machine::num_online() > 1 {
        machine::online_cpus().last()
    } else {
        None
    }
}

/// Waits for a full grace period: returns once every core that was not idle when it was called
/// has passed a quiescent state, so every read-side section that began before has ended. The
/// caller counts as quiescent while it waits; concurrent callers share grace periods. Takes the
/// context `&mut`: no reference from a read section of the caller can live across it.
///
/// Context: may block (takes `&mut Ctx`).
pub fn synchronize_rcu(ctx: &mut Ctx) {
    might_block("synchronize_rcu");
    not_in_callback("synchronize_rcu");
    wait_for(ctx, snapshot());
}

/// Requests grace period `g` and waits, as an extended quiescent state, until it has completed.
fn wait_for(_ctx: &mut Ctx, g: u64) {
    request(g);
    eqs_enter();
    // The last report completes the grace period: the waiter only watches DONE.
    while DONE.load(Ordering::Acquire) < g {
        callbacks_while_waiting();
        machine::cpu_relax();
    }
    eqs_exit();
}

/// Starts (if needed) the grace period that covers readers running now and returns a cookie for
/// [`poll_state_synchronize_rcu`] (Linux's `start_poll_synchronize_rcu`).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn start_poll_synchronize_rcu() -> u64 {
    let g = snapshot();
    request(g);
    g
}

/// Whether the grace period behind `cookie` has completed. Acquire (pairs with the Release store
/// of `DONE`, after B): a caller that sees `true` is ordered after every reader that cookie's
/// grace period waited for, so it may free what it removed before taking the cookie.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn poll_state_synchronize_rcu(cookie: u64) -> bool {
    DONE.load(Ordering::Acquire) >= cookie
}

/// A cookie for the grace period that covers the readers running now, without starting one
/// (Linux's `get_state_synchronize_rcu`): `poll_state_synchronize_rcu` says when it has
/// completed (someone else's request, or [`cond_synchronize_rcu`], starts it). The snapshot's
/// full barrier (D) orders the caller's removal before it, as in `synchronize_rcu`.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn get_state_synchronize_rcu() -> u64 {
    snapshot()
}

/// A cookie that always reads as completed (Linux's `get_completed_synchronize_rcu`): for a
/// structure's "nothing to wait for" state. Grace periods are numbered from 1 and `DONE` starts
/// there, so 0 is behind every completed one.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub const fn get_completed_synchronize_rcu() -> u64 {
    0
}

/// Waits for the grace period behind `cookie` only if it has not completed yet (Linux's
/// `cond_synchronize_rcu`): an updater that took the cookie long ago pays nothing. Waiting is a
/// quiescent point, so it takes the context `&mut`. Not from an RCU callback.
///
/// Context: may block (takes `&mut Ctx`).
pub fn cond_synchronize_rcu(ctx: &mut Ctx, cookie: u64) {
    might_block("cond_synchronize_rcu");
    not_in_callback("cond_synchronize_rcu");
    if poll_state_synchronize_rcu(cookie) {
        return;
    }
    // STARTED only grows and a cookie is at most STARTED + 1 when handed out, so a larger one
    // was never handed out: waiting for it would run grace periods back to back for ever.
    let limit = STARTED.load(Ordering::Relaxed) + 1;
    assert!(cookie <= limit, "cond_synchronize_rcu: cookie {} was never handed out (at most {})", cookie, limit);
    wait_for(ctx, cookie);
}

/// Grace periods completed so far.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn completed() -> u64 {
    DONE.load(Ordering::Acquire)
}

/// Grace periods started so far.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn started() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

/// Average duration of the grace periods completed while timing was on, in ns (counter time).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn average_gp_ns() -> u64 {
    machine::ticks_to_ns(GP_TOTAL_TICKS.load(Ordering::Relaxed)) / GP_TIMED.load(Ordering::Relaxed).max(1)
}
