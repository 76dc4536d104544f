//! The read side: read-side critical sections (free in release builds, a nesting count in
//! debug builds), the "is RCU watching" checks, and publishing and loading protected pointers.

use super::CPUS;
use crate::machine::{self, cpu_id, AtomicCtx, AtomicPtr, Ordering};
use core::marker::PhantomData;

machine::percpu! {
    /// Read-side nesting depth (maintained in debug builds only).
    static NESTING: u32 = 0;
}

/// Enters a read-side critical section, without a guard. Free in release builds: no instruction
/// at all, as in liburcu's QSBR flavour, because in QSBR every instruction between quiescent
/// points is already a reader. (No compiler barrier is needed either: a quiescent point is a call
/// into `rcu_qs`/`eqs_enter`, whose barriers and atomics the compiler cannot move accesses
/// across.) Debug builds count the nesting to catch misuse, and name a reader that starts while
/// RCU is not watching this core (in an extended quiescent state, outside an interrupt).
///
/// Prefer [`read`]: its guard borrows the context, so the borrow checker ends the section before
/// the next quiescent point.
///
/// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core.
///
/// # Safety
/// Nothing checks this section's end in release builds. Whatever the caller reads under it must
/// not be used after this core's next quiescent point (anything taking its `&mut Ctx`), and the
/// caller must be where RCU watches this core (it holds a context, and is not inside a
/// `wait_event` condition). Pair each call with one [`rcu_read_unlock`] on this core.
#[inline(always)]
pub unsafe fn rcu_read_lock() {
    #[cfg(debug_assertions)]
    {
        assert_watching("rcu_read_lock");
        NESTING.set(NESTING.get() + 1);
    }
}

/// Leaves a read-side critical section. Debug builds catch an unlock without a lock.
///
/// Context: where the matching `rcu_read_lock` ran, on the same core; never blocks.
///
/// # Safety
/// Pairs with an earlier [`rcu_read_lock`] on this core; the caller uses nothing read under it
/// afterwards.
#[inline(always)]
pub unsafe fn rcu_read_unlock() {
    #[cfg(debug_assertions)]
    {
        let n = NESTING.get();
        assert!(n > 0, "rcu_read_unlock without rcu_read_lock on core {}", cpu_id());
        NESTING.set(n - 1);
    }
}

/// Whether this core is inside a read-side critical section (always false in release builds).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn in_read_section() -> bool {
    cfg!(debug_assertions) && NESTING.get() > 0
}

/// Panics with the named error if this core is inside a read-side critical section (debug).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn assert_not_in_reader(what: &str) {
    if cfg!(debug_assertions) && NESTING.get() > 0 {
        panic!("{} inside RCU read-side critical section on core {}", what, cpu_id());
    }
}

/// Whether RCU is watching this core: it is not in an extended quiescent state (or is, but
/// runs an interrupt handler, which `irq_enter` made a reader). Linux's `rcu_is_watching`.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn rcu_is_watching() -> bool {
    CPUS.local().ctr.load(Ordering::Relaxed) != 0
}

/// Debug builds: panics with a named error if RCU is not watching this core, so a read-side
/// access there is not protected by any grace period. `what` names the operation (fast paths
/// that rely on an implicit read-side section call this).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn assert_watching(what: &str) {
    if cfg!(debug_assertions) && !rcu_is_watching() {
        not_watching(what);
    }
}

#[cold]
#[inline(never)]
fn not_watching(what: &str) -> ! {
    panic!("{} while RCU is not watching core {} (extended quiescent state)", what, cpu_id())
}

/// A read-side critical section for its lifetime `'a`, a shared borrow of this core's context
/// ([`read`]). References obtained under it borrow the guard, and everything that may pass a
/// quiescent point takes the context `&mut`, so the borrow checker rejects a reference held
/// across a quiescent point: at no cost, since the guard is empty (a nesting count in debug
/// builds only). It dereferences to [`AtomicCtx`], so nested sections and the fast paths that
/// need RCU to watch this core accept it. Not `Send`: it borrows this core's context.
pub struct ReadGuard<'a> {
    _ctx: PhantomData<&'a AtomicCtx>,
}

impl<'a> ReadGuard<'a> {
    /// Enters a read-side section (`rcu_read_lock()`), left when the guard is dropped.
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn new(ctx: &'a AtomicCtx) -> Self {
        let _ = ctx;
        // SAFETY: the guard's lifetime bounds every reference obtained under it, and the
        // borrowed context proves RCU watches this core; drop unlocks.
        unsafe { rcu_read_lock() };
        ReadGuard { _ctx: PhantomData }
    }
}

impl core::ops::Deref for ReadGuard<'_> {
    type Target = AtomicCtx;

    #[inline(always)]
    fn deref(&self) -> &AtomicCtx {
        // SAFETY: a read-side section is a context in which RCU watches this core and nothing
        // can block (the guard holds a shared borrow of the context).
        unsafe { AtomicCtx::new() }
    }
}

impl Drop for ReadGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: pairs with the lock in `new`; the guard's borrow has ended every use.
        unsafe { rcu_read_unlock() };
    }
}

/// A read-side section for as long as the guard lives: `let g = rcu::read(ctx);` (`ctx` a
/// `&Ctx`, `&mut Ctx`, `&AtomicCtx` or another guard).
///
/// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
#[inline(always)]
pub fn read(ctx: &AtomicCtx) -> ReadGuard<'_> {
    ReadGuard::new(ctx)
}

/// Loads an RCU-protected pointer (Linux's `rcu_dereference`). A plain load (READ_ONCE): the
/// address dependency to the pointee orders the reads on ARMv8, so no barrier is needed (an
/// Acquire load on the host machine, whose compiler knows no dependency ordering:
/// [`DEREF_ORDERING`](quiescent_platform::DEREF_ORDERING)). The
/// result is a raw pointer: dereferencing it is `unsafe`, and the caller must not use it beyond
/// `guard`'s section. (Safe by itself: loading a pointer cannot go wrong.)
///
/// Context: task, interrupt handler or RCU callback, in a read-side section (takes a `ReadGuard`); never blocks.
#[inline(always)]
pub fn rcu_dereference<T>(p: &AtomicPtr<T>, _guard: &ReadGuard<'_>) -> *mut T {
    p.load(crate::machine::DEREF_ORDERING)
}

/// Publishes a pointer (Linux's `rcu_assign_pointer`): STLR, so everything written to the
/// object before is visible to a reader that sees the pointer; pairs with the address
/// dependency in [`rcu_dereference`].
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline(always)]
pub fn rcu_assign_pointer<T>(p: &AtomicPtr<T>, v: *mut T) {
    p.store(v, Ordering::Release);
}
