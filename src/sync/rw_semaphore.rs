//! The reader-writer semaphore interface the locks share, in a file of its own so that the loom
//! models (`model/`) can compile it next to `percpu_rwsem` without the rest of `sync`.

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
