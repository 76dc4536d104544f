//! Waiting for another core: [`Completion`] (Linux's `struct completion`), and the event pair
//! under it, [`wait_event`] / [`wake_up_all`], for waits on a condition that is not one-shot.
//!
//! The pairing, once for every user: a waker makes its condition true with a store-release,
//! then `dsb ishst` so the store has completed (not merely been ordered) before `sev` signals
//! the event; a waiter re-reads the condition with a load-acquire after every `wfe`. WFE also
//! returns on any interrupt or spuriously, so a waiter never relies on the event alone; and an
//! event sent before the waiter's `wfe` leaves the event register set, so that `wfe` returns at
//! once: no wake-up is lost between the waiter's check and its sleep.
//!
//! A waiting core is in an RCU extended quiescent state (through the blocking-wait hook that
//! RCU installs, see [`IdleHooks`](crate::IdleHooks)): a blocking wait must never hold up a
//! grace period, or two cores could wait on each other for ever.

use crate::arch;
use crate::ctx::Ctx;
use crate::hooks;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Waits with WFE until `done()`, as an extended quiescent state. `done` must read the
/// condition with Acquire (it pairs with the waker's Release store). It runs while RCU is not
/// watching this core, and gets no context: it can reach nothing that needs one (no read
/// section, no percpu_ref or percpu-rwsem fast path), and `ctx` is borrowed `&mut` meanwhile.
///
/// Context: may block (takes `&mut Ctx`).
pub fn wait_event(ctx: &mut Ctx, mut done: impl FnMut() -> bool) {
    // Misuse is named whether or not this call would have to wait (Linux's `might_sleep()`
    // before testing the condition), so it does not hide until a rare contended run.
    // SAFETY: might_block only reports misuse (it names a wait where none may be).
    (unsafe { hooks::idle_hooks() }.might_block)();
    if done() {
        return;
    }
    hooks::blocking_wait(ctx, &mut || {
        let waiting = !done();
        if waiting {
            arch::wfe();
        }
        waiting
    });
}

/// Wakes every core waiting in [`wait_event`], after the caller's Release store that made a
/// condition true: `dsb ishst` completes that store before `sev`; pairs with the `wfe` and the
/// Acquire re-check in `wait_event`.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn wake_up_all() {
    arch::dsb_ishst();
    arch::sev();
}

/// A one-shot (or n-shot) event: one core waits, completers on any core (in an idle loop, a
/// work item or an interrupt handler) signal it.
pub struct Completion {
    remaining: AtomicUsize,
}

impl Completion {
    /// A completion that [`wait`](Self::wait) sees done after one [`complete`](Self::complete).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn new() -> Self {
        Self::expecting(1)
    }

    /// A completion that is done after `n` calls of [`complete`](Self::complete) (0: done).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn expecting(n: usize) -> Self {
        Completion { remaining: AtomicUsize::new(n) }
    }

    /// Signals one completion. Everything the caller did before is visible to the waiter once
    /// it returns from [`wait`](Self::wait).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline]
    pub fn complete(&self) {
        // Release: the completer's writes (a result) before the count drops; pairs with the
        // Acquire in `is_done`.
        let before = self.remaining.fetch_sub(1, Ordering::Release);
        assert!(before > 0, "Completion completed more times than expected");
        wake_up_all();
    }

    /// Whether every expected completion has been signalled.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }

    /// Waits (as an extended quiescent state) until done.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn wait(&self, ctx: &mut Ctx) {
        wait_event(ctx, || self.is_done());
    }
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}
