//! The read side: read-side critical sections (free in release builds, a nesting count in
//! debug builds), the "is RCU watching" checks, and publishing and loading protected pointers.

use super::CPUS;
use crate::machine::{self, cpu_id, AtomicPtr, Ordering};

machine::percpu! {
    /// Read-side nesting depth (maintained in debug builds only).
    static NESTING: u32 = 0;
}

/// Enters a read-side critical section. Free in release builds: no instruction at all, as in
/// liburcu's QSBR flavour, because in QSBR every instruction between quiescent points is already
/// a reader. (No compiler barrier is needed either: a quiescent point is a call into
/// [`rcu_qs`](super::rcu_qs)/[`eqs_enter`](super::eqs_enter), whose barriers and atomics the
/// compiler cannot move accesses across.) Debug builds count the nesting to catch misuse, and
/// name a reader that starts while RCU is not watching this core (in an extended quiescent
/// state, outside an interrupt).
#[inline(always)]
pub fn rcu_read_lock() {
    #[cfg(debug_assertions)]
    {
        assert_watching("rcu_read_lock");
        NESTING.set(NESTING.get() + 1);
    }
}

/// Leaves a read-side critical section. Debug builds catch an unlock without a lock.
#[inline(always)]
pub fn rcu_read_unlock() {
    #[cfg(debug_assertions)]
    {
        let n = NESTING.get();
        assert!(n > 0, "rcu_read_unlock without rcu_read_lock on core {}", cpu_id());
        NESTING.set(n - 1);
    }
}

/// Whether this core is inside a read-side critical section (always false in release builds).
pub fn in_read_section() -> bool {
    cfg!(debug_assertions) && NESTING.get() > 0
}

/// Panics with the named error if this core is inside a read-side critical section (debug).
#[inline]
pub fn assert_not_in_reader(what: &str) {
    if cfg!(debug_assertions) && NESTING.get() > 0 {
        panic!("{} inside RCU read-side critical section on core {}", what, cpu_id());
    }
}

/// Whether RCU is watching this core: it is not in an extended quiescent state (or is, but
/// runs an interrupt handler, which `irq_enter` made a reader). Linux's `rcu_is_watching`.
#[inline]
pub fn rcu_is_watching() -> bool {
    CPUS.local().ctr.load(Ordering::Relaxed) != 0
}

/// Debug builds: panics with a named error if RCU is not watching this core, so a read-side
/// access there is not protected by any grace period. `what` names the operation (fast paths
/// that rely on an implicit read-side section call this).
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

/// A read-side critical section for its lifetime. Not `Send`: the section belongs to the core
/// that entered it (a guard dropped on another core would end that core's section instead).
pub struct ReadGuard(core::marker::PhantomData<*const ()>);

impl ReadGuard {
    /// `rcu_read_lock()` now, `rcu_read_unlock()` on drop.
    #[inline(always)]
    pub fn new() -> Self {
        rcu_read_lock();
        ReadGuard(core::marker::PhantomData)
    }
}

// A check that fails to compile if ReadGuard ever becomes Send (the `assert_not_impl_any`
// trick): with Send, both impls below apply and the item is ambiguous.
const _: () = {
    trait AmbiguousIfSend<A> {
        fn item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    let _ = <ReadGuard as AmbiguousIfSend<_>>::item;
};

impl Default for ReadGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ReadGuard {
    #[inline(always)]
    fn drop(&mut self) {
        rcu_read_unlock();
    }
}

/// `rcu_read_lock()` as a guard.
#[inline(always)]
pub fn read() -> ReadGuard {
    ReadGuard::new()
}

/// Loads an RCU-protected pointer (Linux's `rcu_dereference`). A plain load (READ_ONCE): the
/// address dependency to the pointee orders the reads on ARMv8, so no barrier is needed.
#[inline(always)]
pub fn rcu_dereference<T>(p: &AtomicPtr<T>, _guard: &ReadGuard) -> *mut T {
    p.load(Ordering::Relaxed)
}

/// Publishes a pointer (Linux's `rcu_assign_pointer`): STLR, so everything written to the
/// object before is visible to a reader that sees the pointer; pairs with the address
/// dependency in [`rcu_dereference`].
#[inline(always)]
pub fn rcu_assign_pointer<T>(p: &AtomicPtr<T>, v: *mut T) {
    p.store(v, Ordering::Release);
}
