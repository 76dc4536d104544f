//! Objects whose lifetime is a percpu_ref, as aio's `kioctx` (Linux's `ctx->users`): an RCU
//! lookup finds the object, `tryget_live` turns the find into a counted reference that outlives
//! the read section, `kill` starts the shutdown, and the object goes once the last reference is
//! put, a grace period later.
//!
//! ```
//! use quiescent_platform::Ctx;
//! use quiescent_rcu::{self as rcu, list::RcuList};
//! use quiescent_sync::percpu_ref::{Counted, PercpuObj};
//!
//! struct IoCtx { id: u64 }
//! static TABLE: RcuList<PercpuObj<IoCtx>> = RcuList::new();
//!
//! // A request: find the context under RCU, keep it with a counted reference.
//! fn lookup(ctx: &Ctx, id: u64) -> Option<Counted<IoCtx>> {
//!     let g = rcu::read(ctx);
//!     TABLE.iter(&g).find(|o| o.id == id)?.tryget_live(&g)
//! }
//!
//! fn request(ctx: &mut Ctx, id: u64) {
//!     let Some(io) = lookup(ctx, id) else { return };
//!     rcu::rcu_quiescent_state(ctx); // the reference, not RCU, keeps it alive here
//!     let _ = io.id;
//!     io.put(ctx); // or drop it
//! }
//!
//! fn destroy(ctx: &Ctx, id: u64) {
//!     if let Some(entry) = TABLE.remove(|o| o.id == id) {
//!         entry.val().kill(ctx); // tryget_live fails from now on; freed after the last put
//!     }
//! }
//! # // On the host machine (threads as cores): one context, a request, then its destruction.
//! # use quiescent_platform::host;
//! # host::boot(2, || unsafe { rcu::init(Default::default()) });
//! # host::on_cpu(0, |_| TABLE.add_head(PercpuObj::new(IoCtx { id: 7 }).unwrap()));
//! # host::on_cpu(1, |ctx| request(ctx, 7));
//! # host::on_cpu(0, |ctx| destroy(ctx, 7));
//! # assert!(host::on_cpu(1, |ctx| lookup(ctx, 7).is_none()));
//! ```
//!
//! # Why it is sound
//!
//! The object and its ref live in one `Arc` allocation. Two kinds of owner keep it: every
//! [`PercpuObj`] (a handle for lookup structures, which clones the `Arc`: an atomic add, but
//! only when a structure takes one) and the ref itself, whose own `Arc` is given up a grace
//! period after `release` runs. A [`Counted`] reference is a raw pointer plus one count of the
//! ref: while it exists the count is not zero, so `release` has not run and the ref's `Arc`
//! keeps the object; taking and putting one touches only this core's counter (percpu mode).
//! The fast paths need RCU to watch the core: `tryget_live` and `get` take `&AtomicCtx`; a
//! `Counted` dropped without one puts on the fast path where RCU watches (`rcu_is_watching`)
//! and otherwise from an RCU callback, where it does.

use super::{Flags, PercpuRef, PercpuRefError};
use crate::machine::{AtomicCtx, Mutex};
use crate::rcu;
use alloc::sync::Arc;
use core::ptr::NonNull;

struct Inner<T> {
    users: Arc<PercpuRef>,
    val: T,
}

/// The ref's own hold on the object: set once the object exists, given up a grace period after
/// `release` (which runs inside the ref, so the last `Arc` must not be dropped there).
type Keep<T> = Mutex<Option<Arc<Inner<T>>>>;

/// A handle on an object whose lifetime is a percpu_ref (see the module docs): clone it into
/// lookup structures (`RcuList<PercpuObj<T>>`); find it under RCU and take a [`Counted`]
/// reference with [`tryget_live`](Self::tryget_live); [`kill`](Self::kill) it once. It
/// dereferences to the object (the handle keeps the memory; whether the object is still live is
/// the ref's business).
pub struct PercpuObj<T: Send + Sync + 'static> {
    inner: Arc<Inner<T>>,
}

impl<T: Send + Sync + 'static> Clone for PercpuObj<T> {
    fn clone(&self) -> Self {
        PercpuObj { inner: self.inner.clone() }
    }
}

impl<T: Send + Sync + 'static> PercpuObj<T> {
    /// A live object holding its initial reference, which [`kill`](Self::kill) drops. The
    /// object is freed a grace period after the last reference is put after the kill (and the
    /// last handle is dropped). An object never killed lives for ever.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn new(val: T) -> Result<Self, PercpuRefError> {
        Self::with_release(val, Mode::Percpu, |_| {})
    }

    /// [`new`](Self::new), counting in `mode`, with `release` run once when the count reaches
    /// zero after the kill (aio's `free_ioctx_users`), on whichever core puts last; the object is
    /// freed a grace period later. `release` must not block.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn with_release(
        val: T,
        mode: Mode,
        release: impl Fn(&T) + Send + Sync + 'static,
    ) -> Result<Self, PercpuRefError> {
        let keep: Arc<Keep<T>> = Arc::new(Mutex::new(None));
        let k2 = keep.clone();
        let flags = match mode {
            Mode::Percpu => Flags::NONE,
            Mode::Atomic => Flags::INIT_ATOMIC,
        };
        let users = PercpuRef::init(
            move |_| {
                let me = k2.lock().take();
                if let Some(me) = me {
                    release(&me.val);
                    // After a grace period: no tryget_live still looks at the count, and the
                    // release (running inside the ref) has returned.
                    rcu::call_rcu(move |_| drop(me));
                }
            },
            flags,
        )?;
        let inner = Arc::new(Inner { users, val });
        *keep.lock() = Some(inner.clone());
        Ok(PercpuObj { inner })
    }

    /// Whether `a` and `b` are handles on the same object.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// A counted reference, if the object is still live (Linux's `percpu_ref_tryget_live`):
    /// fails from the moment a core sees the kill, for good once a grace period has passed. The
    /// reference outlives the read section it was taken in. `ctx` proves RCU watches this core
    /// (a read guard or a context), as percpu_ref's fast path needs.
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline]
    pub fn tryget_live(&self, ctx: &AtomicCtx) -> Option<Counted<T>> {
        self.inner.users.tryget_live(ctx).then(|| Counted::new(&self.inner))
    }

    /// Drops the initial reference: `tryget_live` fails from now on, and the object goes a
    /// grace period after the last [`Counted`] is put. Killing twice is reported (percpu_ref's
    /// `KillTwice`) and ignored.
    ///
    /// Context: task, interrupt handler or RCU callback (takes `&AtomicCtx`); never blocks; allocates.
    pub fn kill(&self, ctx: &AtomicCtx) {
        self.inner.users.kill(ctx);
    }

    /// Whether the object has been killed.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn is_dying(&self) -> bool {
        self.inner.users.is_dying()
    }

    /// The count, if it is known (atomic mode with no switch pending; see
    /// [`PercpuRef::count`]). The ref itself is not handed out: a `reinit` after the release
    /// would make references to an object on its way to being freed.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn count(&self) -> Option<i64> {
        self.inner.users.count()
    }
}

/// How a [`PercpuObj`] counts its references.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// percpu_ref's per-core counters until the kill (the point of it).
    Percpu,
    /// One shared atomic count from the start (percpu_ref's atomic mode, `INIT_ATOMIC`): the
    /// pre-percpu_ref scheme (aio's `atomic_t users` and `dead`), for comparison.
    Atomic,
}

impl<T: Send + Sync + 'static> core::ops::Deref for PercpuObj<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner.val
    }
}

/// A counted reference to a [`PercpuObj`]'s object: it may cross quiescent states and cores, and
/// puts its count when dropped (or with [`put`](Self::put), which takes the fast path for sure).
pub struct Counted<T: Send + Sync + 'static> {
    inner: NonNull<Inner<T>>,
}

// SAFETY: a counted reference is a shared reference to `Inner<T>` (T: Sync) that keeps it alive
// through the count; putting it from another core is putting it there (T: Send).
unsafe impl<T: Send + Sync + 'static> Send for Counted<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync + 'static> Sync for Counted<T> {}

impl<T: Send + Sync + 'static> Counted<T> {
    /// Wraps a reference just counted on `inner`.
    fn new(inner: &Arc<Inner<T>>) -> Self {
        Counted { inner: NonNull::from(&**inner) }
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: this reference holds a count, so release has not run and the ref's own Arc
        // (given up a grace period after release) keeps the allocation.
        unsafe { self.inner.as_ref() }
    }

    /// Another counted reference to the same object (a `get`: this one holds a count).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    pub fn clone_ref(&self, ctx: &AtomicCtx) -> Self {
        self.inner().users.get(ctx);
        Counted { inner: self.inner }
    }

    /// Puts the reference on the fast path (`ctx` proves RCU watches this core).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    pub fn put(self, ctx: &AtomicCtx) {
        let me = core::mem::ManuallyDrop::new(self);
        me.inner().users.put(ctx);
    }
}

impl<T: Send + Sync + 'static> core::ops::Deref for Counted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner().val
    }
}

/// `Counted`'s pointer, moved into an RCU callback.
struct SendPtr<T>(NonNull<Inner<T>>);
// SAFETY: as `Counted`'s Send.
unsafe impl<T: Send + Sync + 'static> Send for SendPtr<T> {}

impl<T: Send + Sync + 'static> Drop for Counted<T> {
    fn drop(&mut self) {
        if rcu::rcu_is_watching() {
            // SAFETY: RCU watches this core (its `ctr` is not 0), and nothing between this check
            // and the put is a quiescent point: the put's fast path is covered, as with a proof.
            self.inner().users.put(unsafe { AtomicCtx::new() });
        } else {
            // Not watched (a wait condition): put from a callback, where RCU watches. The count
            // held until then keeps the object.
            let p = SendPtr(self.inner);
            rcu::call_rcu(move |ctx| {
                let p = p;
                // SAFETY: the count this callback puts keeps the object (see `inner`).
                unsafe { p.0.as_ref() }.users.put(ctx);
            });
        }
    }
}
