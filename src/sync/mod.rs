//! The synchronisation primitives built on RCU and per-core storage.
//!
//! * [`rcu_sync`]: the reader-visible "writer present" state with grace-period entry/exit.
//! * [`percpu_rwsem`]: Linux's percpu-rwsem (readers touch only their core's counter).
//! * [`rwsem`]: the classic single-word rw_semaphore, the baseline; [`SpinRw`] wraps
//!   `spin::RwLock` as a second baseline.
//! * [`percpu_ref`]: Linux's percpu_ref (per-core get/put until `kill`).
//!
//! The reader-writer locks share the [`RwSemaphore`] trait, so tests, the demo and the
//! benchmarks run the same code on each.
pub mod percpu_ref;
pub mod percpu_rwsem;
pub mod rcu_sync;
pub mod rwsem;

/// The reader-writer semaphore interface (Linux's `down_read`/`up_read`/`down_write`/...).
pub trait RwSemaphore: Send + Sync {
    /// Takes the lock shared, waiting if a writer holds it or waits for it.
    fn down_read(&self);
    /// Takes the lock shared if that needs no waiting.
    fn down_read_trylock(&self) -> bool;
    /// Releases a shared hold.
    fn up_read(&self);
    /// Takes the lock exclusive, waiting for readers and writers.
    fn down_write(&self);
    /// Takes the lock exclusive if that needs no waiting (always false for percpu-rwsem, as in
    /// Linux: its writer must wait for a grace period).
    fn down_write_trylock(&self) -> bool;
    /// Releases the exclusive hold.
    fn up_write(&self);
    /// Whether any reader holds the lock.
    fn is_read_locked(&self) -> bool;
    /// Whether a writer holds the lock.
    fn is_write_locked(&self) -> bool;
    /// Debug builds: panics unless this core holds the lock exclusive.
    fn assert_write_held(&self);
    /// A short name for reports.
    fn name(&self) -> &'static str;

    /// `down_read` as a guard.
    fn read(&self) -> ReadGuard<'_, Self>
    where
        Self: Sized,
    {
        self.down_read();
        ReadGuard(self)
    }

    /// `down_write` as a guard.
    fn write(&self) -> WriteGuard<'_, Self>
    where
        Self: Sized,
    {
        self.down_write();
        WriteGuard(self)
    }
}

/// Holds the lock shared until dropped.
pub struct ReadGuard<'a, L: RwSemaphore>(&'a L);

impl<L: RwSemaphore> Drop for ReadGuard<'_, L> {
    fn drop(&mut self) {
        self.0.up_read();
    }
}

/// Holds the lock exclusive until dropped.
pub struct WriteGuard<'a, L: RwSemaphore>(&'a L);

impl<L: RwSemaphore + ?Sized> RwSemaphore for alloc::sync::Arc<L> {
    fn down_read(&self) {
        (**self).down_read()
    }
    fn down_read_trylock(&self) -> bool {
        (**self).down_read_trylock()
    }
    fn up_read(&self) {
        (**self).up_read()
    }
    fn down_write(&self) {
        (**self).down_write()
    }
    fn down_write_trylock(&self) -> bool {
        (**self).down_write_trylock()
    }
    fn up_write(&self) {
        (**self).up_write()
    }
    fn is_read_locked(&self) -> bool {
        (**self).is_read_locked()
    }
    fn is_write_locked(&self) -> bool {
        (**self).is_write_locked()
    }
    fn assert_write_held(&self) {
        (**self).assert_write_held()
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
}

impl<L: RwSemaphore> Drop for WriteGuard<'_, L> {
    fn drop(&mut self) {
        self.0.up_write();
    }
}

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
    fn down_read(&self) {
        core::mem::forget(self.lock.read());
    }
    fn down_read_trylock(&self) -> bool {
        self.lock.try_read().map(core::mem::forget).is_some()
    }
    fn up_read(&self) {
        // SAFETY: pairs with a forgotten read guard from down_read (the trait's contract).
        unsafe { self.lock.force_read_decrement() }
    }
    fn down_write(&self) {
        crate::rcu::assert_not_in_reader("spin::RwLock write");
        core::mem::forget(self.lock.write());
    }
    fn down_write_trylock(&self) -> bool {
        self.lock.try_write().map(core::mem::forget).is_some()
    }
    fn up_write(&self) {
        // SAFETY: pairs with a forgotten write guard from down_write (the trait's contract).
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
