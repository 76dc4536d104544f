//! The reader-writer semaphore interface the locks share, in a file of its own so that the loom
//! models (`model/`) can compile it next to `percpu_rwsem` without the rest of `sync`.
//!
//! What the types enforce: taking the lock in a way that may wait takes the blocking context
//! (`&mut Ctx`: a wait is a quiescent point); the non-blocking operations take a proof that RCU
//! watches this core (`&AtomicCtx`, which percpu-rwsem's reader fast path relies on). Releasing
//! is `unsafe` ([`RwSemaphore::up_read`], [`RwSemaphore::up_write`]): an unbalanced release would
//! let a writer in beside a reader, breaking what unsafe code protected by the lock relies on.
//! The guards ([`RwSemaphore::read`], [`RwSemaphore::try_read`], [`RwSemaphore::write`]) are the
//! safe way: they release exactly once.

use crate::machine::{AtomicCtx, Ctx};

/// The reader-writer semaphore interface (Linux's `down_read`/`up_read`/`down_write`/...).
pub trait RwSemaphore: Send + Sync {
    /// Takes the lock shared, waiting if a writer holds it or waits for it.
    ///
    /// Context: may block (takes `&mut Ctx`).
    fn down_read(&self, ctx: &mut Ctx);
    /// Takes the lock shared if that needs no waiting.
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    fn down_read_trylock(&self, ctx: &AtomicCtx) -> bool;
    /// Releases a shared hold.
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    ///
    /// # Safety
    /// The caller holds the lock shared (taken with `down_read` or `down_read_trylock`, on any
    /// core) and gives that hold up: each successful `down_read*` is matched by one `up_read`.
    unsafe fn up_read(&self, ctx: &AtomicCtx);
    /// Releases a shared hold where RCU may not watch this core (a guard dropped anywhere): as
    /// `up_read`, on a path that does not rely on RCU (percpu-rwsem: its slow path).
    ///
    /// Context: any, even where RCU does not watch (a `wait_event` condition); never blocks.
    ///
    /// # Safety
    /// As [`up_read`](Self::up_read).
    unsafe fn up_read_unwatched(&self);
    /// Takes the lock exclusive, waiting for readers and writers.
    ///
    /// Context: may block (takes `&mut Ctx`).
    fn down_write(&self, ctx: &mut Ctx);
    /// Takes the lock exclusive if that needs no waiting (always false for percpu-rwsem, as in
    /// Linux: its writer must wait for a grace period).
    ///
    /// Context: task or RCU callback (the hold's release is not interrupt-safe); never blocks.
    fn down_write_trylock(&self) -> bool;
    /// Releases the exclusive hold.
    ///
    /// Context: task or RCU callback, not an interrupt handler (an IRQ-unsafe lock); never blocks; allocates.
    ///
    /// # Safety
    /// This core holds the lock exclusive (from `down_write` or `down_write_trylock`) and gives
    /// it up.
    unsafe fn up_write(&self);
    /// Whether any reader holds the lock.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    fn is_read_locked(&self) -> bool;
    /// Whether a writer holds the lock.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    fn is_write_locked(&self) -> bool;
    /// Debug builds: panics unless this core holds the lock exclusive.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    fn assert_write_held(&self);
    /// A short name for reports.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    fn name(&self) -> &'static str;

    /// `down_read` as a guard.
    ///
    /// Context: may block (takes `&mut Ctx`).
    fn read(&self, ctx: &mut Ctx) -> ReadGuard<'_, Self>
    where
        Self: Sized,
    {
        self.down_read(ctx);
        ReadGuard(self)
    }

    /// `down_read_trylock` as a guard.
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    fn try_read(&self, ctx: &AtomicCtx) -> Option<ReadGuard<'_, Self>>
    where
        Self: Sized,
    {
        self.down_read_trylock(ctx).then(|| ReadGuard(self))
    }

    /// `down_write` as a guard.
    ///
    /// Context: may block (takes `&mut Ctx`).
    fn write(&self, ctx: &mut Ctx) -> WriteGuard<'_, Self>
    where
        Self: Sized,
    {
        self.down_write(ctx);
        WriteGuard(self, core::marker::PhantomData)
    }

    /// `down_write_trylock` as a guard.
    ///
    /// Context: task or RCU callback (the hold's release is not interrupt-safe); never blocks.
    fn try_write(&self) -> Option<WriteGuard<'_, Self>>
    where
        Self: Sized,
    {
        self.down_write_trylock().then(|| WriteGuard(self, core::marker::PhantomData))
    }
}

/// Holds the lock shared. [`unlock`](Self::unlock) releases it on the fast path (it takes the
/// proof that RCU watches this core); dropping it releases it on a path that needs no such proof
/// (percpu-rwsem's slow path: a shared atomic and a barrier), since a guard can be dropped
/// anywhere, even inside a `wait_event` condition.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ReadGuard<'a, L: RwSemaphore>(&'a L);

impl<L: RwSemaphore> ReadGuard<'_, L> {
    /// Releases the lock (`up_read`).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn unlock(self, ctx: &AtomicCtx) {
        let l = self.0;
        core::mem::forget(self);
        // SAFETY: the guard held one shared hold, given up here once (the guard is forgotten).
        unsafe { l.up_read(ctx) };
    }
}

impl<L: RwSemaphore> Drop for ReadGuard<'_, L> {
    fn drop(&mut self) {
        // SAFETY: the guard holds one shared hold, given up once.
        unsafe { self.0.up_read_unwatched() };
    }
}

/// Holds the lock exclusive until dropped. Not `Send`: the writer is a core (the locks check
/// their owner).
#[must_use = "the lock is released when the guard is dropped"]
pub struct WriteGuard<'a, L: RwSemaphore>(&'a L, core::marker::PhantomData<*const ()>);

impl<L: RwSemaphore> Drop for WriteGuard<'_, L> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the exclusive hold of this core, given up once.
        unsafe { self.0.up_write() };
    }
}

impl<L: RwSemaphore + ?Sized> RwSemaphore for alloc::sync::Arc<L> {
    fn down_read(&self, ctx: &mut Ctx) {
        (**self).down_read(ctx)
    }
    fn down_read_trylock(&self, ctx: &AtomicCtx) -> bool {
        (**self).down_read_trylock(ctx)
    }
    unsafe fn up_read(&self, ctx: &AtomicCtx) {
        // SAFETY: the caller's contract, for the same lock.
        unsafe { (**self).up_read(ctx) }
    }
    unsafe fn up_read_unwatched(&self) {
        // SAFETY: the caller's contract, for the same lock.
        unsafe { (**self).up_read_unwatched() }
    }
    fn down_write(&self, ctx: &mut Ctx) {
        (**self).down_write(ctx)
    }
    fn down_write_trylock(&self) -> bool {
        (**self).down_write_trylock()
    }
    unsafe fn up_write(&self) {
        // SAFETY: the caller's contract, for the same lock.
        unsafe { (**self).up_write() }
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
