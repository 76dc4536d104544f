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

use crate::arch;
use crate::rcu;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const IDLE: u32 = 0;
const ENTER: u32 = 1;
const PASSED: u32 = 2;
const EXIT: u32 = 3;
const REPLAY: u32 = 4;

/// The part an RCU callback may still reach after the owner moved on.
struct Inner {
    state: AtomicU32,
    /// Writers inside (between enter and exit); under `lock`.
    count: spin::Mutex<u32>,
}

/// The reader-visible "a writer is (or was recently) present" state.
pub struct RcuSync {
    inner: Arc<Inner>,
}

/// Grace periods writers waited for in `enter` (observable: back-to-back writers pay once).
static GP_WAITS: AtomicU64 = AtomicU64::new(0);

/// Number of grace periods `enter` has waited for, over all `RcuSync`s.
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
    pub fn new() -> Self {
        RcuSync { inner: Arc::new(Inner { state: AtomicU32::new(IDLE), count: spin::Mutex::new(0) }) }
    }

    /// The reader's test: one load, no barrier. Only meaningful inside an RCU read-side section
    /// (in QSBR: anywhere but at a quiescent point).
    #[inline(always)]
    pub fn is_idle(&self) -> bool {
        self.inner.state.load(Ordering::Relaxed) == IDLE
    }

    /// A writer arrives: readers are switched to their slow path. The first writer waits one
    /// grace period; later ones (or one arriving within the exit grace period) do not.
    pub fn enter(&self) {
        let prev = {
            let mut n = self.inner.count.lock();
            let prev = self.inner.state.load(Ordering::Relaxed);
            if prev == IDLE {
                self.inner.state.store(ENTER, Ordering::Relaxed);
            }
            *n += 1;
            prev
        };
        if prev == IDLE {
            GP_WAITS.fetch_add(1, Ordering::Relaxed);
            rcu::synchronize_rcu();
            // Every reader that could have seen IDLE has finished: ENTER -> PASSED.
            Inner::gp_passed(&self.inner);
            return;
        }
        // Another writer is waiting for the grace period; PASSED, EXIT and REPLAY all mean it
        // has passed (readers are on the slow path).
        let inner = &self.inner;
        rcu::wait_quiescent(|| {
            let waiting = inner.state.load(Ordering::Acquire) < PASSED;
            if waiting {
                arch::wfe();
            }
            waiting
        });
    }

    /// A writer leaves. When the last one leaves, readers return to their fast path one grace
    /// period later (via `call_rcu`).
    pub fn exit(&self) {
        let mut n = self.inner.count.lock();
        assert!(*n > 0, "rcu_sync exit without enter");
        *n -= 1;
        if *n == 0 {
            match self.inner.state.load(Ordering::Relaxed) {
                PASSED => {
                    self.inner.state.store(EXIT, Ordering::Relaxed);
                    Inner::call(&self.inner);
                }
                EXIT => self.inner.state.store(REPLAY, Ordering::Relaxed),
                _ => {}
            }
        }
    }
}

impl Inner {
    fn call(this: &Arc<Inner>) {
        let me = this.clone();
        rcu::call_rcu(move || Inner::gp_passed(&me));
    }

    /// A grace period has passed since the last transition (Linux's `rcu_sync_func`).
    fn gp_passed(this: &Arc<Inner>) {
        let n = this.count.lock();
        let st = this.state.load(Ordering::Relaxed);
        if *n > 0 {
            // Release: whatever the writers did is visible to a waiter that sees PASSED.
            this.state.store(PASSED, Ordering::Release);
            arch::dsb_ishst(); // the store completes before the wake-up; pairs with the wfe in enter
            arch::sev();
        } else if st == REPLAY {
            // Another exit happened during the exit grace period: wait one more.
            this.state.store(EXIT, Ordering::Relaxed);
            drop(n);
            Inner::call(this);
        } else {
            // A grace period after the last exit: every reader has seen the writers' critical
            // sections (they went through the slow path). Release: pairs with nothing the reader
            // needs (its fast path relies on the grace period), but keeps the writers' stores
            // ordered before the fast path reopens.
            this.state.store(IDLE, Ordering::Release);
        }
    }
}

impl Drop for RcuSync {
    fn drop(&mut self) {
        // A pending exit callback holds its own reference to `inner`; nothing to wait for.
        assert_eq!(*self.inner.count.lock(), 0, "rcu_sync dropped with a writer inside");
    }
}
