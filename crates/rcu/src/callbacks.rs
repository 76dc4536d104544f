//! Callbacks: the per-core segmented callback lists, running the ready ones, and `rcu_barrier`.
//!
//! # Intrusive heads, no allocation
//!
//! A queued callback is an [`RcuHead`] (Linux's `struct rcu_head`: a next link and a function)
//! embedded in the object it concerns. Queueing links the head at the tail of this core's list;
//! nothing is allocated and the heap lock is not taken. The list is one singly linked FIFO cut
//! into at most [`NSEG`] segments, each with the grace period its callbacks need (Linux's
//! `rcu_segcblist`): one grace period serves a whole segment, so the objects retired during one
//! grace period are freed together when it ends (Linux's `kfree_rcu` batching), each by its own
//! callback, with no per-object bookkeeping.
//!
//! Safe code queues a head only by giving up a `Box` that contains it ([`kfree_rcu`], and
//! through it `RcuCell`'s `Retired` and `RcuList`'s `Removed`): the box is turned into a raw
//! pointer when queued and back into a `Box` in the callback, so nothing can move, free or queue
//! the object again while it is linked. [`call_rcu_head`] is the raw, `unsafe` form.
//!
//! The closure form [`call_rcu`] is a convenience on top: it allocates one box per call (the
//! closure beside its head).

use super::gp::{request, snapshot};
use super::qs::{callbacks_while_waiting, eqs_enter, eqs_exit, might_block};
use super::{CPUS, DONE};
use crate::machine::{self, cpu_id, ipi, AtomicCtx, AtomicU64, AtomicUsize, Ctx, IrqGuard, Ordering};
use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};

/// The function a queued [`RcuHead`] runs with after its grace period: it gets the head back and
/// owns the object around it from then on (typically frees it).
pub type RcuCallback = unsafe fn(NonNull<RcuHead>, &AtomicCtx);

/// Linux's `struct rcu_head`: two words embedded in an object so that the object can be queued
/// for a callback after a grace period without allocating. Only the callback list touches its
/// fields, on the core that queued it, with interrupts masked; see [`kfree_rcu`] for the safe
/// way to use one and [`call_rcu_head`] for the raw one.
pub struct RcuHead {
    next: UnsafeCell<*mut RcuHead>,
    func: UnsafeCell<Option<RcuCallback>>,
}

// SAFETY: a head carries no data of its own: its fields are written only while it is queued,
// by the core whose list links it (interrupts masked), and never read through a shared
// reference by anyone else, so a reference to it (inside an object readers share) may be on any
// core, and the object holding it may be sent.
unsafe impl Sync for RcuHead {}
// SAFETY: as above.
unsafe impl Send for RcuHead {}

impl RcuHead {
    /// A head, not queued.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn new() -> Self {
        RcuHead { next: UnsafeCell::new(ptr::null_mut()), func: UnsafeCell::new(None) }
    }
}

impl Default for RcuHead {
    fn default() -> Self {
        Self::new()
    }
}

/// A type with an [`RcuHead`] inside, which [`kfree_rcu`] can free after a grace period with no
/// allocation.
///
/// # Safety
/// `HEAD_OFFSET` is `core::mem::offset_of!(Self, <field>)` of a field of type `RcuHead` that
/// nothing but [`kfree_rcu`] uses, in a type that is not `repr(packed)` (the head is written with
/// aligned accesses; `kfree_rcu` also checks at compile time that the offset is aligned and the
/// head inside the type). `Self`'s drop then runs as an RCU callback: it must not block, nor take
/// a lock that code on the same core holds across a blocking wait.
pub unsafe trait RcuHeaded: Send + Sized + 'static {
    /// The byte offset of the head in `Self`.
    const HEAD_OFFSET: usize;
}

/// Frees `b` after a grace period (Linux's `kfree_rcu`): links the head inside it into this
/// core's callback list, with no allocation and no heap lock; the object is dropped, on this
/// core, by a callback when the grace period ends, with the other objects retired during the
/// same grace period. Safe from any context, interrupt handlers and callbacks included.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks; allocates nothing.
///
/// ```
/// use quiescent_rcu::{kfree_rcu, RcuHead, RcuHeaded};
///
/// struct Route { dst: u32, head: RcuHead }
/// // SAFETY: HEAD_OFFSET is the offset of `head`, which nothing else uses.
/// unsafe impl RcuHeaded for Route {
///     const HEAD_OFFSET: usize = core::mem::offset_of!(Route, head);
/// }
///
/// fn retire(old: Box<Route>) {
///     kfree_rcu(old); // no allocation; dropped a grace period from now
/// }
/// # // On the host machine (threads as cores): retire one, then wait for its callback.
/// # quiescent_platform::host::boot(2, || unsafe { quiescent_rcu::init(Default::default()) });
/// # quiescent_platform::host::on_cpu(1, |ctx| {
/// #     retire(Box::new(Route { dst: 1, head: RcuHead::new() }));
/// #     let (queued, run) = quiescent_rcu::stats::callback_counts();
/// #     quiescent_rcu::rcu_barrier(ctx);
/// #     assert!(quiescent_rcu::stats::callback_counts().1 > run, "{queued} queued");
/// # });
/// ```
pub fn kfree_rcu<T: RcuHeaded>(b: Box<T>) {
    // SAFETY: the pointer comes from `Box::into_raw`, and this call gives it up.
    unsafe { kfree_rcu_raw(NonNull::new_unchecked(Box::into_raw(b))) }
}

/// [`kfree_rcu`] for a box already turned into a raw pointer (`RcuCell`'s and `RcuList`'s
/// retired objects, which readers share, so they are not held as a `Box` meanwhile).
///
/// # Safety
/// `p` came from `Box::into_raw` of a `Box<T>`, and the caller gives up every use of it.
pub(super) unsafe fn kfree_rcu_raw<T: RcuHeaded>(p: NonNull<T>) {
    // The head is written through aligned accesses: it must be aligned and inside `T` (a
    // `repr(packed)` type could name an unaligned field's offset).
    const {
        assert!(
            core::mem::align_of::<T>() >= core::mem::align_of::<RcuHead>()
                && T::HEAD_OFFSET % core::mem::align_of::<RcuHead>() == 0
                && T::HEAD_OFFSET + core::mem::size_of::<RcuHead>() <= core::mem::size_of::<T>(),
            "RcuHeaded: HEAD_OFFSET must name an aligned RcuHead inside the type"
        )
    };
    // SAFETY: `p` is a live allocation of `T` and HEAD_OFFSET is the offset of its RcuHead
    // (RcuHeaded's contract), so `h` points to that head, inside the allocation.
    let h = unsafe { NonNull::new_unchecked(p.as_ptr().cast::<u8>().add(T::HEAD_OFFSET).cast::<RcuHead>()) };
    // SAFETY: ownership of the box passed to the list (the caller's contract): nothing else
    // holds a `Box` or `&mut` to it, so the object stays where it is and is freed only by
    // `drop_boxed::<T>`, which gets the head back after the grace period.
    unsafe { call_rcu_head(h, drop_boxed::<T>) }
}

/// `kfree_rcu`'s callback: the `Box<T>` back from its head, dropped.
unsafe fn drop_boxed<T: RcuHeaded>(h: NonNull<RcuHead>, _: &AtomicCtx) {
    // SAFETY: `h` was computed in `kfree_rcu` from `Box::into_raw` of a `Box<T>` plus
    // HEAD_OFFSET; the callback runs once, after the grace period, so no reader still holds it.
    drop(unsafe { Box::from_raw(h.as_ptr().cast::<u8>().sub(T::HEAD_OFFSET).cast::<T>()) });
}

/// A closure queued by [`call_rcu`], beside its head (the head first: the head's address is the
/// box's).
#[repr(C)]
struct ClosureCb<F> {
    head: RcuHead,
    f: F,
}

unsafe fn run_closure<F: FnOnce(&AtomicCtx)>(h: NonNull<RcuHead>, ctx: &AtomicCtx) {
    // SAFETY: `h` is the first field of a `ClosureCb<F>` (repr(C)) that `call_rcu` boxed and
    // leaked; this callback runs once.
    let b = unsafe { Box::from_raw(h.as_ptr().cast::<ClosureCb<F>>()) };
    let ClosureCb { f, .. } = *b;
    f(ctx)
}

/// Queues `f` on this core, to run after a full grace period, from this core's idle loop (or
/// its next `rcu_quiescent_state`, or inside a blocking wait), in queue order with every other
/// callback of this core. `f` may allocate, free and call `call_rcu`; it gets an
/// [`AtomicCtx`], so it may read under RCU but not block.
///
/// A convenience that **allocates** (one box holding the closure and its [`RcuHead`]) and so
/// takes the heap lock: freeing an object after a grace period is [`kfree_rcu`]'s job (or
/// dropping `RcuCell`'s `Retired` / `RcuList`'s `Removed`), which allocates nothing.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks; allocates (one box).
pub fn call_rcu<F: FnOnce(&AtomicCtx) + Send + 'static>(f: F) {
    let p = Box::into_raw(Box::new(ClosureCb { head: RcuHead::new(), f }));
    // SAFETY: the box is leaked to the list, and `run_closure::<F>` takes it back once.
    unsafe { call_rcu_head(NonNull::new_unchecked(p.cast::<RcuHead>()), run_closure::<F>) }
}

/// Segments in a core's list. A callback whose grace period is later than the last segment's
/// starts a new one while there is room, otherwise it joins the last segment, whose grace
/// period it moves later (its callbacks then wait longer, never less).
const NSEG: usize = 4;

/// Callbacks waiting for one grace period: an intrusive chain `head..=tail`.
#[derive(Clone, Copy)]
struct Segment {
    gp: u64,
    head: *mut RcuHead,
    tail: *mut RcuHead,
}

/// A core's callbacks: a ring of segments, oldest first, in queue order.
struct CbList {
    segs: [Segment; NSEG],
    first: usize,
    len: usize,
}

// SAFETY: the list owns the objects whose heads it links (their ownership passed to it when
// queued; they are Send: `RcuHeaded: Send`, `call_rcu`'s `F: Send`), and it is only touched by
// its own core with interrupts masked.
unsafe impl Send for CbList {}

const EMPTY: Segment = Segment { gp: 0, head: ptr::null_mut(), tail: ptr::null_mut() };

impl CbList {
    const fn new() -> Self {
        CbList { segs: [EMPTY; NSEG], first: 0, len: 0 }
    }

    fn front_gp(&self) -> u64 {
        if self.len == 0 {
            u64::MAX
        } else {
            self.segs[self.first].gp
        }
    }

    /// Links `h` at the tail, needing grace period `g`.
    ///
    /// # Safety
    /// `h` is a valid head, not queued, that stays valid and unmoved until its callback runs.
    unsafe fn push(&mut self, h: *mut RcuHead, g: u64) {
        if self.len > 0 {
            let b = &mut self.segs[(self.first + self.len - 1) % NSEG];
            if g <= b.gp || self.len == NSEG {
                // An earlier grace period than the last segment's (an interrupt handler's
                // callback landed between this caller's snapshot and its push) or no room:
                // join the last segment, which waits for the later of the two.
                b.gp = b.gp.max(g);
                // SAFETY: `b.tail` is a queued head (a segment is never empty), valid until its
                // callback runs, which needs the list, which we hold.
                unsafe { *(*b.tail).next.get() = h };
                b.tail = h;
                return;
            }
        }
        let i = (self.first + self.len) % NSEG;
        self.segs[i] = Segment { gp: g, head: h, tail: h };
        self.len += 1;
    }

    /// Unlinks the oldest segment if its grace period is `<= done`; returns its chain.
    fn pop_ready(&mut self, done: u64) -> *mut RcuHead {
        let f = self.first % NSEG;
        if self.len == 0 || self.segs[f].gp > done {
            return ptr::null_mut();
        }
        let s = self.segs[f];
        self.segs[f] = EMPTY;
        self.first = (self.first + 1) % NSEG;
        self.len -= 1;
        s.head
    }
}

/// A core's [`CbList`], reached only through [`with_list`].
struct LocalCbList(UnsafeCell<CbList>);

// SAFETY: only its own core reaches it (`CBLISTS.local()` in `with_list`, the one accessor),
// with interrupts masked, so no two `&mut` to it exist at once: no other core, no interrupt
// handler on this core, and `with_list`'s callers (in this file) call nothing that reaches it
// again inside.
unsafe impl Sync for LocalCbList {}

machine::percpu_shared! {
    /// A core's callbacks, segmented by the grace period each needs, in queue order: one grace
    /// period serves a whole segment. Grace periods are non-decreasing along the list except
    /// through `push`'s merging, which only delays. Only its own core touches it, with
    /// interrupts masked (no lock: nobody else can reach it).
    static CBLISTS: LocalCbList = LocalCbList(UnsafeCell::new(CbList::new()));
}

/// Runs `f` on this core's callback list, with interrupts masked. `f` must not queue or run
/// callbacks (it would reach the list again).
#[inline(always)]
fn with_list<R>(f: impl FnOnce(&mut CbList) -> R) -> R {
    let _irq = IrqGuard::new();
    // SAFETY: this core's list; interrupts are masked, so no handler on this core reaches it
    // meanwhile, other cores never do, and `f` does not (this function's contract, kept by its
    // callers in this file): the `&mut` is the only reference for its lifetime.
    f(unsafe { &mut *CBLISTS.local().0.get() })
}
machine::global! {
    static CBS_QUEUED: AtomicU64 = AtomicU64::new(0);
    static CBS_INVOKED: AtomicU64 = AtomicU64::new(0);
}

/// Queues `head` on this core, to have `func` called with it after a full grace period (Linux's
/// `call_rcu(head, func)`), in queue order with every other callback of this core. No
/// allocation, no heap lock: the head is linked into this core's list.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks; allocates nothing.
///
/// # Safety
/// `head` points to an [`RcuHead`] that is not queued, and that stays valid, unmoved and
/// otherwise untouched until `func` is called with it. The object holding it may be touched by
/// `func` on this core. `func` must be sound to call once with the head from an RCU callback
/// (an [`AtomicCtx`], no blocking).
pub unsafe fn call_rcu_head(head: NonNull<RcuHead>, func: RcuCallback) {
    let h = head.as_ptr();
    // SAFETY: the head is ours to write (the caller's contract: not queued, untouched by
    // others); both fields are UnsafeCells, so readers sharing the object around it are not
    // affected.
    unsafe {
        *(*h).func.get() = Some(func);
        *(*h).next.get() = ptr::null_mut();
    }
    let g = snapshot();
    with_list(|l| {
        // SAFETY: the caller's contract.
        unsafe { l.push(h, g) };
        if l.len == 1 {
            // The front segment is new or its grace period moved: the idle loop's one load.
            CPUS.local().first_cb_gp.store(l.front_gp(), Ordering::Relaxed);
        }
    });
    CBS_QUEUED.fetch_add(1, Ordering::Relaxed);
    request(g);
}

/// The grace period the oldest waiting callback of this core needs, if any.
pub(super) fn first_pending_gp() -> Option<u64> {
    let g = CPUS.local().first_cb_gp.load(Ordering::Relaxed);
    (g != u64::MAX).then_some(g)
}

/// Whether this core has callbacks whose grace period has completed.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn has_ready_callbacks() -> bool {
    first_pending_gp().is_some_and(|g| g <= DONE.load(Ordering::Acquire))
}

machine::percpu! {
    /// Set while this core runs callbacks: a callback that passes a quiescent point must not
    /// start running later segments (an `rcu_barrier` marker among them) ahead of its own.
    pub(super) static IN_CALLBACKS: bool = false;
}

/// Runs this core's callbacks whose grace period has completed (off the list, so they
/// may queue more). Not re-entered from a callback. Called where RCU watches this core.
pub(super) fn process_callbacks() {
    if IN_CALLBACKS.get() {
        return;
    }
    if first_pending_gp().is_none_or(|g| g > DONE.load(Ordering::Acquire)) {
        return; // the common case: one load each, no lock
    }
    IN_CALLBACKS.set(true);
    // Not under loom, whose failures are panics its runner must catch.
    #[cfg(not(loom))]
    let fatal = FatalOnUnwind;
    run_ready_callbacks();
    #[cfg(not(loom))]
    core::mem::forget(fatal);
    IN_CALLBACKS.set(false);
}

/// Dropped only when a callback's panic unwinds (where panics unwind: a hosted build), which it
/// turns into an abort: the panic took the rest of its chain with it (an `rcu_barrier` marker
/// among them, which would never run) and left `IN_CALLBACKS` set. A panic is fatal on the
/// firmware too.
#[cfg(not(loom))]
struct FatalOnUnwind;

#[cfg(not(loom))]
impl Drop for FatalOnUnwind {
    fn drop(&mut self) {
        // A panic while unwinding aborts the process, after printing both messages.
        panic!("an RCU callback panicked on core {}: fatal", machine::cpu_id());
    }
}

fn run_ready_callbacks() {
    loop {
        let done = DONE.load(Ordering::Acquire);
        if first_pending_gp().is_none_or(|g| g > done) {
            return; // the common case: one load each, no lock
        }
        let mut h = with_list(|l| {
            let chain = l.pop_ready(done);
            CPUS.local().first_cb_gp.store(l.front_gp(), Ordering::Relaxed);
            chain
        });
        if h.is_null() {
            return;
        }
        // The segment's objects, freed together: the whole chain is ours now (unlinked from the
        // list), in queue order.
        while let Some(head) = NonNull::new(h) {
            // SAFETY: a head in an unlinked chain is valid until its callback runs; its fields
            // were set by `call_rcu_head` and are read before the callback may free it.
            let (next, func) = unsafe { (*(*h).next.get(), *(*h).func.get()) };
            h = next;
            // Counted before it runs: when an rcu_barrier marker runs (and its waiter returns),
            // every callback before it, on this core, is already counted.
            CBS_INVOKED.fetch_add(1, Ordering::Relaxed);
            if let Some(func) = func {
                // SAFETY: callbacks run where RCU watches this core (a quiescent point, or a
                // blocking wait that left its extended quiescent state for them), and get no
                // blocking context; `func` was queued with `head` by `call_rcu_head`, whose
                // caller vouched for calling it once with it, after the grace period `done`
                // covers.
                unsafe { func(head, AtomicCtx::new()) };
            }
        }
    }
}

/// Callbacks queued and invoked so far (all cores).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn callback_counts() -> (u64, u64) {
    (CBS_QUEUED.load(Ordering::Relaxed), CBS_INVOKED.load(Ordering::Relaxed))
}

/// Waits until every callback queued (on any core) before the call has run (Linux's
/// `rcu_barrier`), of every kind (closures, [`kfree_rcu`], `Retired`, `Removed`, raw heads: one
/// list per core, in queue order): entrains a marker callback on every online core behind its
/// existing ones (on the others from their interrupt context, with `call_function_single`, as
/// Linux does), then waits, running this core's own callbacks meanwhile. Works from any core.
/// Not from an RCU callback (its own core's marker would queue behind it) or an interrupt
/// handler: both are named errors.
///
/// Context: may block (takes `&mut Ctx`); interrupts enabled; allocates.
pub fn rcu_barrier(ctx: &mut Ctx) {
    might_block("rcu_barrier");
    if IN_CALLBACKS.get() {
        panic!("rcu_barrier called from an RCU callback on core {} (it would wait for itself)", cpu_id());
    }
    let remaining = alloc::sync::Arc::new(AtomicUsize::new(0));
    let cpus: alloc::vec::Vec<usize> = machine::online_cpus().collect();
    remaining.store(cpus.len(), Ordering::Relaxed);
    for &c in &cpus {
        let r = remaining.clone();
        let entrain = move |_: &AtomicCtx| {
            call_rcu(move |_| {
                r.fetch_sub(1, Ordering::Release);
            })
        };
        ipi::call_function_single(ctx, c, entrain); // runs it here if `c` is this core
    }
    eqs_enter();
    while remaining.load(Ordering::Acquire) != 0 {
        callbacks_while_waiting();
        machine::cpu_relax();
    }
    eqs_exit();
}

/// Whether this core is running RCU callbacks (a callback, or code it called, is running).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn in_callback() -> bool {
    IN_CALLBACKS.get()
}
