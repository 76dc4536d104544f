//! `rcu_sync` (Linux's `kernel/rcu/sync.c`): a state readers test with one load, which writers
//! leave with [`RcuSync::enter`] (paying one grace period the first time) and return to with
//! [`RcuSync::exit`] (after a further grace period, from an RCU callback, so back-to-back writers
//! do not pay twice).
//!
//! ```text
//!            enter (count 0->1)       GP passed
//!   IDLE ───────────────────► ENTER ─────────► PASSED ──exit (count->0)──► EXIT ──GP──► IDLE
//!                                                 ▲                        │  ▲
//!                                                 └── enter within the ────┘  │ exit again within
//!                                                     exit GP (no wait)       │ the exit GP: REPLAY
//! ```
//!
//! A reader that sees IDLE is inside an (implicit, QSBR) RCU read-side section, so a writer that
//! leaves IDLE and waits a grace period knows every reader from then on sees "not idle".

use crate::machine::{self, AtomicU32, AtomicU64, Ctx, Mutex, Ordering};
use crate::rcu;
use alloc::sync::Arc;

/// The `Arc` an `RcuSync` lives in, and where in it (see [`RcuSync::exit`]).
type Owner<'a, O> = (&'a Arc<O>, fn(&O) -> &RcuSync);

const IDLE: u32 = 0;
const ENTER: u32 = 1;
const PASSED: u32 = 2;
const EXIT: u32 = 3;
const REPLAY: u32 = 4;

/// The reader-visible "a writer is (or was recently) present" state. It lives inline in its
/// owner (one load for readers); the owner is kept in an `Arc` so the exit callback can reach
/// it (see [`RcuSync::exit`]).
pub struct RcuSync {
    state: AtomicU32,
    /// Writers inside (between enter and exit).
    count: Mutex<u32>,
}

machine::global! {
    /// Grace periods writers waited for in `enter` (observable: back-to-back writers pay once).
    static GP_WAITS: AtomicU64 = AtomicU64::new(0);
}

/// Number of grace periods `enter` has waited for, over all `RcuSync`s.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn gp_waits() -> u64 {
    GP_WAITS.load(Ordering::Relaxed)
}

impl Default for RcuSync {
    fn default() -> Self {
        Self::new()
    }
}

impl RcuSync {
    /// An idle `rcu_sync`.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn new() -> Self {
        RcuSync { state: AtomicU32::new(IDLE), count: Mutex::new(0) }
    }

    /// The reader's test: one load, no barrier. Only meaningful inside an RCU read-side section
    /// (in QSBR: anywhere but at a quiescent point).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; meaningful where RCU watches the core.
    #[inline(always)]
    pub fn is_idle(&self) -> bool {
        self.state.load(Ordering::Relaxed) == IDLE
    }

    /// A writer arrives: readers are switched to their slow path. The first writer waits one
    /// grace period; later ones (or one arriving within the exit grace period) do not.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn enter(&self, ctx: &mut Ctx) {
        let prev = {
            let mut n = self.count.lock();
            let prev = self.state.load(Ordering::Relaxed);
            if prev == IDLE {
                self.state.store(ENTER, Ordering::Relaxed);
            }
            *n += 1;
            prev
        };
        if prev == IDLE {
            GP_WAITS.fetch_add(1, Ordering::Relaxed);
            // G: every reader that could have seen IDLE has finished its fast path (so
            // percpu-rwsem's per-core counts stay as they are until IDLE): ENTER -> PASSED.
            crate::machine::grace_period!("G", rcu::synchronize_rcu(ctx));
            self.gp_passed(None::<Owner<'_, RcuSync>>);
            return;
        }
        // Another writer is waiting for the grace period; PASSED, EXIT and REPLAY all mean it
        // has passed (readers are on the slow path).
        machine::wait_event(ctx, || self.state.load(Ordering::Acquire) >= PASSED);
    }

    /// A writer leaves. When the last one leaves, readers return to their fast path one grace
    /// period later, from an RCU callback that holds `owner` (the `Arc` this `RcuSync` lives in,
    /// `field` its place there) so the state it updates cannot go away or move under it. An
    /// `owner` that does not hold this `RcuSync` at `field` is a named panic in every build, as
    /// is an exit without an enter. (percpu-rwsem does not expose its `RcuSync`: an exit there
    /// by anyone but its writer would reopen the readers' fast path under that writer.)
    ///
    /// Context: task or RCU callback, not an interrupt handler (an IRQ-unsafe lock); never blocks; allocates.
    pub fn exit<O: Send + Sync + 'static>(&self, owner: &Arc<O>, field: fn(&O) -> &RcuSync) {
        assert!(core::ptr::eq(field(owner), self), "rcu_sync exit with another owner");
        let mut n = self.count.lock();
        assert!(*n > 0, "rcu_sync exit without enter");
        *n -= 1;
        if *n == 0 {
            match self.state.load(Ordering::Relaxed) {
                PASSED => {
                    self.state.store(EXIT, Ordering::Relaxed);
                    Self::call(owner, field);
                }
                EXIT => self.state.store(REPLAY, Ordering::Relaxed),
                _ => {}
            }
        }
    }

    fn call<O: Send + Sync + 'static>(owner: &Arc<O>, field: fn(&O) -> &RcuSync) {
        let me = owner.clone();
        rcu::call_rcu(move |_| field(&me).gp_passed(Some((&me, field))));
    }

    /// A grace period has passed since the last transition (Linux's `rcu_sync_func`).
    fn gp_passed<O: Send + Sync + 'static>(&self, owner: Option<Owner<'_, O>>) {
        let n = self.count.lock();
        let st = self.state.load(Ordering::Relaxed);
        if *n > 0 {
            // Release: whatever the writers did is visible to a waiter that sees PASSED.
            self.state.store(PASSED, Ordering::Release);
            machine::wake_up_all();
        } else if st == REPLAY {
            // Another exit happened during the exit grace period: wait one more.
            self.state.store(EXIT, Ordering::Relaxed);
            drop(n);
            let (owner, field) = owner.expect("REPLAY only after exit, which passes the owner");
            Self::call(owner, field);
        } else {
            // A grace period after the last exit: every reader has seen the writers' critical
            // sections (they went through the slow path). What orders the writers' stores before
            // a fast-path reader's accesses is that grace period (RCU's A-D), not this store.
            self.state.store(IDLE, Ordering::Relaxed);
        }
    }
}

impl Drop for RcuSync {
    fn drop(&mut self) {
        // A pending exit callback holds the owner's Arc, so a drop cannot race with it.
        assert_eq!(*self.count.lock(), 0, "rcu_sync dropped with a writer inside");
    }
}
