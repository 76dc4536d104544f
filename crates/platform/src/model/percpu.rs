//! Per-core storage and statics: the per-core base, per-cpu boxes and their counters (percpu_ref's
//! template address and `this_cpu_add_u64` among them), per-core statics, and the firmware's
//! `static`s as per-execution values.

use super::{cpu_id, AtomicU64, Ordering, NR_CPUS};
use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use loom::sync::atomic::fence;
use std::boxed::Box;
use std::vec::Vec;

/// This core's per-core base (the firmware's TPIDR_EL1): here the core number.
#[derive(Clone, Copy)]
pub struct PercpuBase(usize);

/// Reads this core's base.
pub fn percpu_base() -> PercpuBase {
    PercpuBase(cpu_id())
}

/// The firmware's per-cpu allocation failure (never happens in the model).
#[derive(Debug)]
pub struct PercpuAllocError;

/// One `u32` slot per core. Only its own core adds to a slot, with the firmware's restartable
/// load-add-store: a relaxed load and store here, not a `fetch_add`, so that an add racing with
/// another core's `remote_set` (percpu-rwsem's fold, if the counts were not frozen) loses one
/// of the two, as it would on the hardware.
///
/// Use after free is a failure loom reports: every access to the slots is also a read of a loom
/// cell that dropping the box writes (as the allocator handing the memory to its next user
/// would), so loom fails an execution in which an access is not ordered before the drop by
/// happens-before (whichever ran first), and an access that runs after the drop fails the
/// "used after it was freed" check.
pub struct PercpuBox<T> {
    slots: Option<Box<Slots>>,
    _t: PhantomData<T>,
}

/// A box's memory: the per-core slots and the cell that stands for their allocation.
struct Slots {
    /// Read (shared) by every access to `ctr`, written by the drop (the free).
    alloc: loom::cell::UnsafeCell<()>,
    ctr: Vec<AtomicU64>,
}

// SAFETY: the cell holds nothing (`()`): it is only the allocation's access record, read and
// written through loom, which checks every access against the others; the slots are atomics.
unsafe impl Sync for Slots {}
// SAFETY: as Sync.
unsafe impl Send for Slots {}

impl Slots {
    /// Core `cpu`'s slot, for one access: fails if the box was freed before it (in the order
    /// the execution ran them), and records the access for loom's check against the free.
    fn at<R>(&self, cpu: usize, f: impl FnOnce(&AtomicU64) -> R) -> R {
        let me = self as *const Slots as usize;
        let freed = FREED_SLOTS.with(|f| f.borrow().contains(&me));
        assert!(!freed, "per-cpu counter used after it was freed");
        self.alloc.with(|_| f(&self.ctr[cpu]))
    }
}

impl<T> PercpuBox<T> {
    fn slots(&self) -> &Slots {
        self.slots.as_deref().expect("a box is only emptied by its drop")
    }
}

impl PercpuBox<u64> {
    /// Every core's slot set to `init`.
    pub fn new(init: u64) -> Result<Self, PercpuAllocError> {
        let ctr = (0..NR_CPUS).map(|_| AtomicU64::new(init)).collect();
        Ok(PercpuBox { slots: Some(Box::new(Slots { alloc: loom::cell::UnsafeCell::new(()), ctr })), _t: PhantomData })
    }

    /// `this_cpu_add`: no barrier.
    pub fn this_cpu_add(&self, delta: u64) {
        self.add_at(cpu_id(), delta);
    }

    /// The load-add-store on `cpu`'s slot (its own core's).
    fn add_at(&self, cpu: usize, delta: u64) {
        self.slots().at(cpu, |s| s.store(s.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed));
    }

    /// `this_cpu_inc`.
    pub fn this_cpu_inc(&self) {
        self.this_cpu_add(1);
    }

    /// `this_cpu_dec`.
    pub fn this_cpu_dec(&self) {
        self.this_cpu_add(u64::MAX);
    }

    /// `this_cpu_inc` with the base already read.
    pub fn this_cpu_inc_at(&self, base: PercpuBase) {
        self.add_at(base.0, 1);
    }

    /// `this_cpu_dec` with the base already read.
    pub fn this_cpu_dec_at(&self, base: PercpuBase) {
        self.add_at(base.0, u64::MAX);
    }

    /// Wrapping sum over `cpus`, relaxed loads.
    pub fn sum(&self, cpus: impl Iterator<Item = usize>) -> u64 {
        cpus.fold(0u64, |s, c| s.wrapping_add(self.slots().at(c, |v| v.load(Ordering::Relaxed))))
    }
}

/// A static per-core variable (declared with [`percpu!`]): one slot per loom thread (= core),
/// fresh in every execution. Only its own core reaches it, as on the firmware.
pub struct Percpu<T: 'static>(pub &'static loom::thread::LocalKey<Cell<T>>);

impl<T: Copy + 'static> Percpu<T> {
    /// This core's value.
    pub fn get(&self) -> T {
        self.0.with(|c| c.get())
    }

    /// Sets this core's value.
    pub fn set(&self, v: T) {
        self.0.with(|c| c.set(v))
    }
}

/// The firmware's `percpu!`: each static becomes a [`Percpu`] over a loom thread-local.
#[macro_export]
macro_rules! percpu {
    ($($(#[$m:meta])* $vis:vis static $name:ident : $ty:ty = $init:expr;)+) => {$(
        $(#[$m])*
        $vis static $name: $crate::Percpu<$ty> = {
            $crate::__private::loom::thread_local! {
                static SLOT: core::cell::Cell<$ty> = core::cell::Cell::new($init);
            }
            $crate::Percpu(&SLOT)
        };
    )+};
}

/// The firmware's per-core statics that other cores read (`percpu_shared!`): one element per
/// modelled core, built afresh for each execution.
pub struct PercpuShared<T>(Vec<T>);

impl<T> PercpuShared<T> {
    /// One `init()` per core.
    pub fn new(init: impl Fn() -> T) -> Self {
        PercpuShared((0..NR_CPUS).map(|_| init()).collect())
    }

    /// This core's.
    pub fn local(&self) -> &T {
        &self.0[cpu_id()]
    }

    /// Core `cpu`'s.
    pub fn remote(&self, cpu: usize) -> &T {
        &self.0[cpu]
    }
}

/// Per-core statics other cores read: one element per modelled core, built afresh for each
/// execution.
#[macro_export]
macro_rules! percpu_shared {
    ($($(#[$m:meta])* static $name:ident : $ty:ty = $init:expr;)+) => {
        $crate::__private::loom::lazy_static! {
            $($(#[$m])* static ref $name: $crate::PercpuShared<$ty> =
                $crate::PercpuShared::new(|| $init);)+
        }
    };
}

/// The firmware's `static`, as a per-execution lazy value (loom atomics have no `const` new).
#[macro_export]
macro_rules! global {
    ($($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;)+) => {
        $crate::__private::loom::lazy_static! { $($(#[$m])* static ref $name: $t = $init;)+ }
    };
}

/// The firmware's per-core `static` array: a per-execution lazy array of `$init` per core.
#[macro_export]
macro_rules! global_array {
    ($(#[$m:meta])* static $name:ident: [$t:ty; $n:expr] = $init:expr;) => {
        $crate::__private::loom::lazy_static! { $(#[$m])* static ref $name: [$t; $n] = core::array::from_fn(|_| $init); }
    };
}

// percpu_ref (`crates/sync/src/percpu_ref/`): the per-core counter reached through the word's
// template address.

/// The firmware's TPIDR_EL1: here this thread's core number, as [`percpu_base`] is.
pub fn tpidr() -> usize {
    cpu_id()
}

impl PercpuBase {
    /// The value [`tpidr`] returns on this core.
    pub fn get(self) -> usize {
        self.0
    }
}

impl PercpuBox<u64> {
    /// The address the firmware's word holds: here the slots' address, which
    /// [`this_cpu_add_u64`] indexes with the running core.
    pub fn template_addr(&self) -> usize {
        self.slots() as *const Slots as usize
    }

    /// Core `cpu`'s slot.
    pub fn remote_get(&self, cpu: usize) -> u64 {
        self.slots().at(cpu, |s| s.load(Ordering::Relaxed))
    }

    /// Sets core `cpu`'s slot (a relaxed store, as the firmware's plain store).
    ///
    /// # Safety
    /// As on the firmware: core `cpu` is not adding to it meanwhile. The model checks what
    /// breaking that does (a lost add), not memory safety, which does not depend on it here.
    pub unsafe fn remote_set(&self, cpu: usize, v: u64) {
        self.slots().at(cpu, |s| s.store(v, Ordering::Relaxed));
    }
}

std::thread_local! {
    // Slot arrays of dropped boxes (kept allocated; loom runs all threads on this OS thread).
    static FREED_SLOTS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl<T> Drop for PercpuBox<T> {
    fn drop(&mut self) {
        // The firmware gives the slots back to its allocator. Here the memory is kept and its
        // address remembered, so that an add through a stale word (a broken variant's) is a
        // failure loom reports, not a use after free in the test process. The free itself is a
        // write of the allocation's cell (the allocator's next user writing the memory): loom
        // fails the execution if an access to the slots is not ordered before it.
        let Some(slots) = self.slots.take() else { return };
        slots.alloc.with_mut(|_| ());
        let slots = Box::leak(slots);
        FREED_SLOTS.with(|f| f.borrow_mut().push(slots as *const Slots as usize));
    }
}

/// The firmware's `this_cpu_add_u64`: adds `delta` to this core's copy of the per-cpu `u64`
/// whose template address is `ptr` ([`PercpuBox::template_addr`]). A relaxed load and store, as
/// the firmware's restartable `ldr`/`add`/`str` is (not an exclusive access): an add racing
/// with `remote_set` can lose either, as on the hardware.
///
/// # Safety
/// `ptr` is the template address of a `PercpuBox<u32>` (the model keeps dropped ones' slots
/// allocated and fails an add to them: "used after it was freed" if the drop ran first, loom's
/// causality check on the allocation's cell if the add and the drop are not ordered).
pub unsafe fn this_cpu_add_u64(ptr: *mut u64, delta: u64) {
    // The caller's counter address is the word it loaded (Relaxed); on ARMv8 the address
    // dependency orders this access after that load. C11 has no dependency ordering: an
    // Acquire fence stands for it (stronger: it orders every earlier load).
    fence(Ordering::Acquire);
    // SAFETY: by the caller's contract `ptr` is a box's `Slots` address; the model never frees
    // that memory (a dropped box's is leaked, and `at` fails the access).
    let slots = unsafe { &*(ptr as *const Slots) };
    slots.at(cpu_id(), |slot| {
        let v = slot.load(Ordering::Relaxed);
        slot.store(v.wrapping_add(delta), Ordering::Relaxed);
    });
}

impl Clone for PercpuAllocError {
    fn clone(&self) -> Self {
        *self
    }
}

impl Copy for PercpuAllocError {}

impl PartialEq for PercpuAllocError {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PercpuAllocError {}
