//! The host machine's interrupts and events: a per-thread mask, the calls queued for a core
//! (`call_function_single`) and its tick, taken as interrupt handlers at the points the host
//! allows (a wait, a spin, an unmask); and the machine-wide event WFE and SEV stand for.

use super::{core_of, HZ};
use crate::arch;
use crate::ctx::AtomicCtx;
use core::sync::atomic::{AtomicU64, Ordering};
use std::cell::Cell;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

std::thread_local! {
    /// Interrupts masked on this core.
    static MASKED: Cell<bool> = const { Cell::new(false) };
    /// This core runs an interrupt handler.
    static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    /// The event count this core's last `wfe` consumed (WFE's event register).
    static LATCH: Cell<u64> = const { Cell::new(0) };
    /// Counter time of this core's last tick.
    static LAST_TICK: Cell<u64> = const { Cell::new(0) };
}

/// Masks this core's interrupts; returns the previous state (1: masked).
pub(crate) fn mask() -> u64 {
    MASKED.with(|m| m.replace(true)) as u64
}

/// Restores a state [`mask`] returned: unmasking takes the pending interrupts.
pub(crate) fn restore(flags: u64) {
    MASKED.with(|m| m.set(flags != 0));
    if flags == 0 {
        take_pending();
    }
}

pub(crate) fn masked() -> bool {
    MASKED.with(Cell::get)
}

pub(crate) fn in_handler() -> bool {
    IN_HANDLER.with(Cell::get)
}

/// Takes this core's pending interrupts, if it is a core and they are unmasked: the calls other
/// cores queued for it, and its tick once a tick period has passed. Each runs as a handler:
/// interrupts masked, between the registered entry and exit hooks (RCU's `irq_enter` makes the
/// handler a reader if the core was in an extended quiescent state), with an [`AtomicCtx`].
pub(crate) fn take_pending() {
    if !arch::is_core() || masked() || in_handler() {
        return;
    }
    let core = core_of(crate::cpu_id());
    let now = arch::counter();
    let tick = now.saturating_sub(LAST_TICK.with(Cell::get)) >= arch::counter_freq() / HZ;
    if !tick && !core.has_calls() {
        return;
    }
    if tick {
        LAST_TICK.with(|t| t.set(now));
    }
    run_handler(|a| {
        while let Some(call) = core.pop_call() {
            call(a);
        }
        if tick {
            crate::run_tick_hooks(a);
        }
    });
}

/// Runs `handler` on this core as an interrupt handler (see [`take_pending`]).
pub(crate) fn run_handler(handler: impl FnOnce(&AtomicCtx)) {
    let was_masked = mask();
    IN_HANDLER.with(|h| h.set(true));
    // SAFETY: this is the host's interrupt entry: the exit hook runs with the entry hook's token
    // after the handler, on this core.
    let hooks = unsafe { crate::irq_context_hooks() };
    let token = hooks.map(|(enter, _)| enter());
    // SAFETY: an interrupt handler between the entry and exit hooks (RCU watches the core for
    // its duration); it is given no `Ctx`, so it cannot pass a quiescent point.
    let ran = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| handler(unsafe { AtomicCtx::new() })));
    if let Err(p) = ran {
        // Unwinding on would leave the core in interrupt context, masked, without `irq_exit`,
        // and RCU's view of it wrong. `call_on` catches its closures' panics itself and raises
        // them on the caller.
        super::fatal("an interrupt handler panicked", &*p);
    }
    if let (Some((_, exit)), Some(token)) = (hooks, token) {
        exit(token);
    }
    IN_HANDLER.with(|h| h.set(false));
    MASKED.with(|m| m.set(was_masked != 0));
}

/// The machine's events: a count of `sev`s, and the sleepers waiting for it to move.
static EVENTS: AtomicU64 = AtomicU64::new(0);
static EVENT_LOCK: Mutex<()> = Mutex::new(());
static EVENT: Condvar = Condvar::new();

/// The event count now (read before checking what a sleep waits for).
pub(crate) fn events() -> u64 {
    EVENTS.load(Ordering::SeqCst)
}

/// SEV: moves the count and wakes every sleeper.
pub(crate) fn signal_event() {
    EVENTS.fetch_add(1, Ordering::SeqCst);
    let _g = EVENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    EVENT.notify_all();
}

/// Sleeps until the event count is no longer `seen`, or for at most `timeout`.
pub(crate) fn sleep_while(seen: u64, timeout: Duration) {
    let mut g = EVENT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    while events() == seen {
        let (g2, r) = EVENT.wait_timeout(g, timeout).unwrap_or_else(|e| e.into_inner());
        g = g2;
        if r.timed_out() {
            break;
        }
    }
}

/// WFE: returns at once if an event came since this core's last `wfe`, otherwise sleeps until
/// one comes (or `timeout`); either way the event is consumed.
pub(crate) fn wait_for_event(timeout: Duration) {
    let now = events();
    if now == LATCH.with(Cell::get) {
        sleep_while(now, timeout);
    }
    LATCH.with(|l| l.set(events()));
}
