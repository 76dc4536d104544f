//! [`RcuCell`]: one RCU-protected, heap-allocated object that safe code reads and replaces (the
//! typed form of `rcu_dereference`/`rcu_assign_pointer`, as Asterinas's `RcuOption`,
//! crossbeam-epoch's `Atomic` or Rust-for-Linux's RCU-protected `Arc`s).
//!
//! ```
//! use quiescent_platform::Ctx;
//! use quiescent_rcu::{self as rcu, cell::RcuCell};
//!
//! struct Config { blocksize: u32 }
//! static CONFIG: RcuCell<Config> = RcuCell::new();
//!
//! fn reader(ctx: &Ctx) -> u32 {
//!     let g = rcu::read(ctx);
//!     CONFIG.read(&g).map_or(512, |c| c.blocksize) // one load; the &Config borrows the guard
//! }
//!
//! fn update(ctx: &mut Ctx, blocksize: u32) {
//!     // The old object goes to RCU: dropped, it is freed after a grace period...
//!     drop(CONFIG.replace(Config { blocksize }));
//!     // ...or `free_after_sync(ctx)` waits for the grace period here instead.
//!     if let Some(old) = CONFIG.replace(Config { blocksize: blocksize * 2 }) {
//!         old.free_after_sync(ctx);
//!     }
//! }
//! # // On the host machine (threads as cores): boot it with RCU, run on two of its cores.
//! # quiescent_platform::host::boot(2, || unsafe { rcu::init(Default::default()) });
//! # quiescent_platform::host::on_cpu(1, |ctx| update(ctx, 1024));
//! # assert_eq!(quiescent_platform::host::on_cpu(0, |ctx| reader(ctx)), 2048);
//! ```

use super::callbacks::kfree_rcu_raw;
use super::{rcu_dereference, RcuHead, RcuHeaded, ReadGuard};
use crate::machine::{AtomicPtr, Ctx, Ordering};
use alloc::boxed::Box;
use core::ptr::{self, NonNull};

/// The box a cell holds: the value, then the [`RcuHead`] that queues it for freeing (so retiring
/// allocates nothing). The value is first (`repr(C)`), at offset 0: a reader's `&T` is the
/// node's address, and `read` stays one load.
#[repr(C)]
struct Node<T> {
    value: T,
    head: RcuHead,
}

// SAFETY: HEAD_OFFSET is `head`'s offset, and only `kfree_rcu` uses that field.
unsafe impl<T: Send + Sync + 'static> RcuHeaded for Node<T> {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Node<T>, head);
}

fn node<T>(value: T) -> *mut Node<T> {
    Box::into_raw(Box::new(Node { value, head: RcuHead::new() }))
}

/// An RCU-protected `Option<Box<T>>`. Readers get `Option<&T>` borrowed from their read guard
/// (one load, no barrier: the address dependency orders the object's loads on ARMv8); updaters
/// publish with a store-release and get the old object back as a [`Retired`], which frees it
/// after a grace period, with no allocation (the box embeds an [`RcuHead`]).
pub struct RcuCell<T: Send + Sync + 'static> {
    ptr: AtomicPtr<Node<T>>,
}

// SAFETY: readers on any core share `&T` (T: Sync); the object is dropped on whichever core
// runs the freeing callback, or replaced from any core (T: Send).
unsafe impl<T: Send + Sync + 'static> Sync for RcuCell<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync + 'static> Send for RcuCell<T> {}

impl<T: Send + Sync + 'static> Default for RcuCell<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + Sync + 'static> RcuCell<T> {
    /// An empty cell.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn new() -> Self {
        RcuCell { ptr: AtomicPtr::new(ptr::null_mut()) }
    }

    /// A cell holding `v`.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn with(v: T) -> Self {
        RcuCell { ptr: AtomicPtr::new(node(v)) }
    }

    /// The object, for the read-side section `'g` (Linux's `rcu_dereference`).
    ///
    /// Context: task, interrupt handler or RCU callback, in a read-side section (takes a `ReadGuard`); never blocks.
    #[inline(always)]
    pub fn read<'g>(&'g self, guard: &'g ReadGuard<'_>) -> Option<&'g T> {
        let p = rcu_dereference(&self.ptr, guard);
        // SAFETY: a non-null pointer in the cell came from Box::into_raw and was published with
        // a store-release (replace/compare_and_replace); it is freed only a grace period after
        // it left the cell (Retired), and the guard's section, which `'g` cannot outlive, began
        // before that grace period could end. `value` is at offset 0: no instruction.
        unsafe { p.as_ref().map(|n| &n.value) }
    }

    /// Publishes `v` (Linux's `rcu_assign_pointer`, STLR: `v`'s initialisation is visible to a
    /// reader that sees it) and returns the object it replaced.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn replace(&self, v: T) -> Option<Retired<T>> {
        self.swap(node(v))
    }

    /// Empties the cell and returns the object it held.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn take(&self) -> Option<Retired<T>> {
        self.swap(ptr::null_mut())
    }

    fn swap(&self, new: *mut Node<T>) -> Option<Retired<T>> {
        // AcqRel: Release publishes `new` (pairs with the readers' address dependency); Acquire
        // makes the old object's initialisation, published the same way, visible to whoever
        // frees it.
        let old = self.ptr.swap(new, Ordering::AcqRel);
        NonNull::new(old).map(Retired)
    }

    /// Replaces the object with `new` if the cell still holds `current` (compared by address;
    /// `None` for empty), for updaters that hold no lock. On failure `new` comes back.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn compare_and_replace(&self, current: Option<&T>, new: T) -> Result<Option<Retired<T>>, T> {
        // `value` is at offset 0 (repr(C), first field): a `&T` from `read` is its node's
        // address. Only compared, never dereferenced.
        const { assert!(core::mem::offset_of!(Node<T>, value) == 0) };
        let cur = current.map_or(ptr::null_mut(), |c| c as *const T as *mut Node<T>);
        let n = node(new);
        // AcqRel on success, as in `swap`; Relaxed on failure (nothing was published or taken).
        match self.ptr.compare_exchange(cur, n, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(old) => Ok(NonNull::new(old).map(Retired)),
            Err(_) => {
                // SAFETY: `n` came from Box::into_raw above and was never published.
                Err(unsafe { Box::from_raw(n) }.value)
            }
        }
    }
}

impl<T: Send + Sync + 'static> Drop for RcuCell<T> {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        if !p.is_null() {
            // SAFETY: dropping the cell: no reader can hold a reference from it (every reference
            // borrows the cell), so the object goes at once.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// An object taken out of an [`RcuCell`]. Readers that found it before may still be reading it,
/// so it is freed only after a grace period: dropping it links the [`RcuHead`] in its box into
/// this core's callback list ([`kfree_rcu`](super::kfree_rcu): no allocation, no heap lock; freed with the other
/// objects of its grace period), [`free_after_sync`](Self::free_after_sync) waits for the grace
/// period; only the `unsafe` [`free_now`](Self::free_now) skips it. It dereferences to the object
/// (shared: readers may still hold references to it).
#[must_use = "the object is freed after a grace period when dropped; bind it to use its value"]
pub struct Retired<T: Send + Sync + 'static>(NonNull<Node<T>>);

// SAFETY: a Retired owns its box alone (readers only hold `&T`, T: Sync); sending it is sending
// a Box<Node<T>> (T: Send).
unsafe impl<T: Send + Sync + 'static> Send for Retired<T> {}
// SAFETY: `&Retired` gives only `&T` (T: Sync).
unsafe impl<T: Send + Sync + 'static> Sync for Retired<T> {}

impl<T: Send + Sync + 'static> Retired<T> {
    /// The box back, for freeing (a raw pointer until then: readers share the object, so it is
    /// not held as a `Box`, which would claim it unaliased).
    fn into_box(self) -> Box<Node<T>> {
        let p = self.0;
        core::mem::forget(self);
        // SAFETY: the pointer came from Box::into_raw (`node`), and the swap that removed it
        // from its cell handed it to this value alone, now consumed.
        unsafe { Box::from_raw(p.as_ptr()) }
    }

    /// Waits for a grace period, then frees the object (`synchronize_rcu(); kfree()`). Blocking.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn free_after_sync(self, ctx: &mut Ctx) {
        super::synchronize_rcu(ctx);
        drop(self.into_box());
    }

    /// Frees the object now, without a grace period.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    ///
    /// # Safety
    /// No reader may still hold a reference to it: a grace period has passed since it left the
    /// cell, or no reader can have found it.
    pub unsafe fn free_now(self) {
        drop(self.into_box());
    }
}

impl<T: Send + Sync + 'static> core::ops::Deref for Retired<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the node is live until this value is consumed or dropped (the callback that
        // frees it is queued only by `drop`).
        unsafe { &self.0.as_ref().value }
    }
}

impl<T: Send + Sync + 'static> Drop for Retired<T> {
    fn drop(&mut self) {
        // SAFETY: as in `into_box`: the pointer came from Box::into_raw and this value, gone
        // after this, owns it alone.
        unsafe { kfree_rcu_raw(self.0) };
    }
}
