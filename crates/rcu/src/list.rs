//! An RCU-protected singly linked list of heap nodes (Linux's `hlist_*_rcu`): readers traverse
//! it without locks inside a read-side section; updaters are serialised by the list's spinlock
//! and hand removed nodes to RCU for freeing.
//!
//! In debug builds every node carries a magic word that is poisoned when the node is freed, and
//! readers check it at each step: a reader that reaches a freed node (an updater that freed
//! without waiting for a grace period) panics with `RCU list: reader reached a freed node`.

use super::callbacks::kfree_rcu_raw;
use super::{rcu_assign_pointer, RcuHead, RcuHeaded, ReadGuard};
use crate::machine::{AtomicPtr, Ctx, IrqGuard, Ordering};
use alloc::boxed::Box;
use core::ptr::{self, NonNull};

const LIVE: u64 = 0x5243_555f_4c49_5645; // "RCU_LIVE"
const POISON: u64 = 0x6b6b_6b6b_6b6b_6b6b; // Linux's POISON_FREE pattern

/// A list node. `val` is what readers see.
pub struct Node<T> {
    next: AtomicPtr<Node<T>>,
    magic: u64,
    /// Queues the node for freeing after a grace period, without allocating.
    head: RcuHead,
    /// The payload.
    pub val: T,
}

// SAFETY: HEAD_OFFSET is `head`'s offset, and only `kfree_rcu` uses that field.
unsafe impl<T: Send + 'static> RcuHeaded for Node<T> {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Node<T>, head);
}

/// What `RcuList::find` returns: the link to the node, the node, and its `next`.
type Found<'l, T> = (&'l AtomicPtr<Node<T>>, NonNull<Node<T>>, *mut Node<T>);

fn new_node<T>(next: *mut Node<T>, val: T) -> *mut Node<T> {
    Box::into_raw(Box::new(Node { next: AtomicPtr::new(next), magic: LIVE, head: RcuHead::new(), val }))
}

impl<T> Drop for Node<T> {
    fn drop(&mut self) {
        // Poison before the memory goes back to the allocator, so a late reader is caught
        // (volatile: the store must not be optimised away as dead).
        if cfg!(debug_assertions) {
            // SAFETY: `self.magic` is a valid, aligned field of a live node being dropped.
            unsafe { ptr::write_volatile(&mut self.magic, POISON) };
        }
    }
}

/// A node unlinked from a list. Readers may still stand on it, so it is freed only after a grace
/// period: dropping it (`let _ = list.remove(..)` included) links the [`RcuHead`] inside the node
/// into this core's callback list ([`kfree_rcu`](super::kfree_rcu): no allocation, no heap lock;
/// freed with the other nodes of its grace period), as does [`free_rcu`](Self::free_rcu);
/// [`free_after_sync`](Self::free_after_sync) waits for the grace period instead. Only the
/// `unsafe` [`free_now`](Self::free_now) skips it.
#[must_use = "the node is freed after a grace period when dropped; bind it to use its value"]
pub struct Removed<T: Send + 'static>(NonNull<Node<T>>);

// SAFETY: whoever holds a removed node owns it (frees it), but readers on any core may still
// hold `&T` into it until the grace period ends, and `val()` hands out another `&T`: so sending
// it to another core shares `&T` between cores (T: Sync) as well as moving the node (T: Send).
unsafe impl<T: Send + Sync + 'static> Send for Removed<T> {}
// SAFETY: a shared `&Removed` only hands out `&T` (T: Sync).
unsafe impl<T: Send + Sync + 'static> Sync for Removed<T> {}

impl<T: Send + 'static> Removed<T> {
    /// The payload (for the updater, which owns the node now).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn val(&self) -> &T {
        // SAFETY: the node is live until this value is consumed or dropped.
        unsafe { &self.0.as_ref().val }
    }

    /// The box back, for freeing (a raw pointer until then: readers may still stand on the
    /// node, so it is not held as a `Box`, which would claim it unaliased).
    fn into_box(self) -> Box<Node<T>> {
        let p = self.0;
        core::mem::forget(self);
        // SAFETY: the pointer came from Box::into_raw (`new_node`), and the unlink that removed it
        // handed it to this value alone, now consumed.
        unsafe { Box::from_raw(p.as_ptr()) }
    }

    /// Frees the node after a grace period, from an RCU callback (Linux's `kfree_rcu`); the
    /// same as dropping it.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates nothing.
    pub fn free_rcu(self) {
        drop(self);
    }

    /// Waits for a grace period, then frees the node (`synchronize_rcu(); kfree()`). Blocking.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn free_after_sync(self, ctx: &mut Ctx) {
        super::synchronize_rcu(ctx);
        drop(self.into_box());
    }

    /// Frees the node now, without a grace period (debug builds poison it first, which is how
    /// the readers' check is tested).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    ///
    /// # Safety
    /// No reader may still hold a reference to the node: a grace period has passed since it
    /// was unlinked, or no reader can have reached it.
    pub unsafe fn free_now(self) {
        drop(self.into_box());
    }
}

impl<T: Send + 'static> Drop for Removed<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::into_raw and this value, gone after this, owns it
        // alone.
        unsafe { kfree_rcu_raw(self.0) };
    }
}

/// An RCU-protected list (Linux's hlist with `_rcu` operations). Updaters serialise on a
/// spinlock held with interrupts masked, so any context may update the list (a tick hook or an
/// RCU callback on a core whose task holds the lock would otherwise spin on it for ever).
pub struct RcuList<T> {
    head: AtomicPtr<Node<T>>,
    lock: spin::Mutex<()>,
}

// SAFETY: readers only read nodes (T: Sync) under RCU; updaters mutate under `lock`; nodes are
// moved between cores (T: Send) when freed by callbacks.
unsafe impl<T: Send + Sync> Sync for RcuList<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for RcuList<T> {}

impl<T> Default for RcuList<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn check<T>(n: &Node<T>) {
    if cfg!(debug_assertions) {
        // SAFETY: a volatile read of a field of a node reached through the list (possibly freed
        // by a buggy updater: exactly what this check exists to catch).
        let m = unsafe { ptr::read_volatile(&n.magic) };
        assert!(m == LIVE, "RCU list: reader reached a freed node (magic {:#x})", m);
    }
}

/// The update lock, held with interrupts masked; released before they are restored (fields drop
/// in order).
struct Locked<'a> {
    _lock: spin::MutexGuard<'a, ()>,
    _irq: IrqGuard,
}

impl<T> RcuList<T> {
    /// An empty list.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn new() -> Self {
        RcuList { head: AtomicPtr::new(ptr::null_mut()), lock: spin::Mutex::new(()) }
    }

    fn lock(&self) -> Locked<'_> {
        let irq = IrqGuard::new();
        Locked { _lock: self.lock.lock(), _irq: irq }
    }

    /// Adds `val` at the head (`hlist_add_head_rcu`).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn add_head(&self, val: T) {
        let n = new_node(ptr::null_mut(), val);
        let _l = self.lock();
        // SAFETY: `n` is ours until published.
        unsafe { (*n).next.store(self.head.load(Ordering::Relaxed), Ordering::Relaxed) };
        rcu_assign_pointer(&self.head, n);
    }

    /// The first node whose value matches, the link that points to it, and its `next` (the
    /// update lock held, as `_locked` proves: the link lives no longer than it). The node comes
    /// back as the pointer `Box::into_raw` gave, for `Removed` to free.
    fn find<'l>(&'l self, _locked: &'l Locked<'_>, pred: impl Fn(&T) -> bool) -> Option<Found<'l, T>> {
        let mut link = &self.head;
        loop {
            let cur = NonNull::new(link.load(Ordering::Relaxed))?;
            // SAFETY: nodes reachable from the list are live while the update lock is held
            // (only updaters, holding it, unlink them, and `Removed` frees them only after a
            // grace period).
            let node = unsafe { cur.as_ref() };
            if pred(&node.val) {
                return Some((link, cur, node.next.load(Ordering::Relaxed)));
            }
            link = &node.next;
        }
    }

    /// Unlinks the first node whose value matches (`hlist_del_rcu`). The node keeps its `next`
    /// pointer, so readers standing on it continue correctly; the returned [`Removed`] frees it
    /// after a grace period. `pred` runs under the update lock with interrupts masked: it is an
    /// `Fn`, so it cannot use a `&mut Ctx` to block or pass a quiescent point there, and it must
    /// not update this list.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn remove(&self, pred: impl Fn(&T) -> bool) -> Option<Removed<T>>
    where
        T: Send + 'static,
    {
        let l = self.lock();
        let (link, node, next) = self.find(&l, pred)?;
        // WRITE_ONCE is enough: readers that see the old link reach `node`, whose next still
        // points into the list. Where `rcu_dereference` is an Acquire load instead of an address
        // dependency (DEREF_ORDERING on the host machine), this store must be a Release: the
        // node it links in may have been published after the one holding `link` (a `replace` of
        // it), and a reader that reaches it only through this store is ordered after its
        // initialisation only by a Release here.
        let order = match crate::machine::DEREF_ORDERING {
            Ordering::Relaxed => Ordering::Relaxed,
            _ => Ordering::Release,
        };
        link.store(next, order);
        // Unlinked: only RCU readers may still look at it, and `Removed` frees it only after a
        // grace period.
        Some(Removed(node))
    }

    /// Replaces the first matching node with a new one holding `new` (`list_replace_rcu`):
    /// readers see either the old or the new node, never neither. `pred` as in [`remove`](Self::remove).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn replace(&self, pred: impl Fn(&T) -> bool, new: T) -> Result<Removed<T>, T>
    where
        T: Send + 'static,
    {
        let l = self.lock();
        let Some((link, node, next)) = self.find(&l, pred) else { return Err(new) };
        rcu_assign_pointer(link, new_node(next, new));
        // Unlinked, as in `remove`.
        Ok(Removed(node))
    }

    /// Iterates under a read-side section (`hlist_for_each_entry_rcu`). The items borrow the
    /// guard, which borrows the context: none can be used after a quiescent point.
    ///
    /// Context: task, interrupt handler or RCU callback, in a read-side section (takes a `ReadGuard`); never blocks.
    pub fn iter<'g>(&'g self, guard: &'g ReadGuard<'_>) -> Iter<'g, T> {
        Iter { next: super::rcu_dereference(&self.head, guard), guard }
    }

    /// Number of nodes (for updaters and tests; takes the update lock).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn len(&self) -> usize {
        let _l = self.lock();
        let mut n = 0;
        let mut p = self.head.load(Ordering::Relaxed);
        while !p.is_null() {
            n += 1;
            // SAFETY: live under the update lock, as in `remove`.
            p = unsafe { (*p).next.load(Ordering::Relaxed) };
        }
        n
    }

    /// Whether the list is empty.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }
}

impl<T> Drop for RcuList<T> {
    fn drop(&mut self) {
        let mut p = *self.head.get_mut();
        while !p.is_null() {
            // SAFETY: dropping the list: no reader can hold a reference (it borrows the list).
            let b = unsafe { Box::from_raw(p) };
            p = b.next.load(Ordering::Relaxed);
        }
    }
}

/// A lockless traversal; valid for the read-side section `'g`.
pub struct Iter<'g, T> {
    next: *mut Node<T>,
    guard: &'g ReadGuard<'g>,
}

impl<'g, T: 'g> Iterator for Iter<'g, T> {
    type Item = &'g T;

    fn next(&mut self) -> Option<&'g T> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: the node was reached through RCU-published pointers inside the read-side
        // section `'g`, so it is not freed before the section ends.
        let n = unsafe { &*self.next };
        check(n);
        self.next = super::rcu_dereference(&n.next, self.guard);
        Some(&n.val)
    }
}
