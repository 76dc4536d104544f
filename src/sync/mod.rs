//! The synchronisation primitives: those of the `quiescent-sync` crate, and the baselines they
//! are measured against.
//!
//! * [`rcu_sync`], [`percpu_rwsem`], [`percpu_ref`]: `quiescent-sync`'s.
//! * [`rwsem`]: the classic single-word rw_semaphore, the baseline; [`SpinRw`] wraps
//!   `spin::RwLock` as a second baseline.
//!
//! The reader-writer locks share the [`RwSemaphore`] trait, so tests, the demo and the
//! benchmarks run the same code on each.
pub use quiescent_sync::{percpu_ref, percpu_rwsem, rcu_sync, ReadGuard, RwSemaphore, WriteGuard};
pub mod rwsem;

use crate::smp::{AtomicCtx, Ctx};

/// `spin::RwLock<()>` behind the same interface (a baseline: readers spin on one shared word).
#[derive(Default)]
pub struct SpinRw {
    lock: spin::RwLock<()>,
}

impl SpinRw {
    /// An unlocked lock.
    pub const fn new() -> Self {
        SpinRw { lock: spin::RwLock::new(()) }
    }
}

impl RwSemaphore for SpinRw {
    fn down_read(&self, _ctx: &mut Ctx) {
        core::mem::forget(self.lock.read());
    }
    fn down_read_trylock(&self, _ctx: &AtomicCtx) -> bool {
        self.lock.try_read().map(core::mem::forget).is_some()
    }
    unsafe fn up_read(&self, _ctx: &AtomicCtx) {
        // SAFETY: the caller holds a read lock, whose guard down_read forgot (the contract).
        unsafe { self.lock.force_read_decrement() }
    }
    unsafe fn up_read_unwatched(&self) {
        // SAFETY: as up_read (spin's lock does not rely on RCU).
        unsafe { self.lock.force_read_decrement() }
    }
    fn down_write(&self, _ctx: &mut Ctx) {
        crate::rcu::assert_not_in_reader("spin::RwLock write");
        core::mem::forget(self.lock.write());
    }
    fn down_write_trylock(&self) -> bool {
        self.lock.try_write().map(core::mem::forget).is_some()
    }
    unsafe fn up_write(&self) {
        // SAFETY: the caller holds the write lock, whose guard down_write forgot (the contract).
        unsafe { self.lock.force_write_unlock() }
    }
    fn is_read_locked(&self) -> bool {
        self.lock.reader_count() > 0
    }
    fn is_write_locked(&self) -> bool {
        self.lock.writer_count() > 0
    }
    fn assert_write_held(&self) {
        debug_assert!(self.lock.writer_count() > 0, "spin::RwLock not write-held");
    }
    fn name(&self) -> &'static str {
        "spin::RwLock"
    }
}
