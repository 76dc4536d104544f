//! The seam under loom: what `src/machine.rs` is on the firmware, here loom's atomics, fences
//! and threads. Each loom thread stands for one core and owns its per-core slot; the model's
//! main thread is core 0 and [`spawn_cpu`] starts the others. Where this differs from ARMv8 is
//! written down next to the firmware's side of the seam (`src/machine.rs`).
//!
//! Negative controls: every barrier call records its caller's line (`#[track_caller]`), and
//! [`omit_barrier`] names one barrier by its file and label (the `// A: ...` comment the project
//! puts on every barrier line) to be left out of the following model runs.
use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use core::panic::Location;
use loom::sync::atomic::fence;

pub use core::sync::atomic::Ordering;
pub use loom::sync::atomic::{AtomicIsize, AtomicU32, AtomicU64}; // AtomicUsize: percpu_ref's section

/// Cores in the model (the per-core slots; a core with no thread keeps a zero count).
pub const NR_CPUS: usize = 3;

loom::thread_local! {
    static CPU: Cell<usize> = Cell::new(0);
}

/// This thread's core.
pub fn cpu_id() -> usize {
    CPU.with(|c| c.get())
}

/// The cores in the model.
pub fn online_cpus() -> impl Iterator<Item = usize> {
    0..NR_CPUS
}

/// Starts core `cpu` running `f`; it leaves RCU's view (offline) when `f` returns.
pub fn spawn_cpu(cpu: usize, f: impl FnOnce() + 'static) -> loom::thread::JoinHandle<()> {
    assert!(cpu > 0 && cpu < NR_CPUS, "core 0 is the model's main thread");
    loom::thread::spawn(move || {
        CPU.with(|c| c.set(cpu));
        crate::rcu::online();
        f();
        crate::rcu::offline();
    })
}

// The files whose barriers a negative control can name, as compiled into this crate.
const SOURCES: &[(&str, &str)] = &[
    ("src/sync/percpu_rwsem.rs", include_str!("../../src/sync/percpu_rwsem.rs")),
    ("src/sync/rcu_sync.rs", include_str!("../../src/sync/rcu_sync.rs")),
];

std::thread_local! {
    // (file, line) of the barrier left out; loom runs all its threads on the test's own thread.
    static OMITTED: RefCell<Option<(&'static str, u32)>> = const { RefCell::new(None) };
}

/// Leaves the barrier labelled `label` (the line `smp_mb(); // A: ...`) in `file` out of the
/// model runs on this thread until [`restore_barriers`]. Panics unless exactly one barrier
/// line carries that label.
pub fn omit_barrier(file: &'static str, label: &str) {
    let (_, text) = SOURCES.iter().find(|(f, _)| *f == file).expect("a file the model compiles");
    let tag = format!("// {label}:");
    let lines: Vec<u32> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(&tag) && ["smp_mb()", "smp_rmb()", "smp_wmb()"].iter().any(|b| l.contains(b)))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert_eq!(lines.len(), 1, "barrier {label} in {file}: lines {lines:?}");
    OMITTED.with(|o| *o.borrow_mut() = Some((file, lines[0])));
}

/// Puts every barrier back.
pub fn restore_barriers() {
    OMITTED.with(|o| *o.borrow_mut() = None);
}

fn omitted(at: &Location<'_>) -> bool {
    OMITTED.with(|o| matches!(*o.borrow(), Some((f, l)) if l == at.line() && at.file().ends_with(f)))
}

/// `dmb ish`, modelled as a SeqCst fence.
#[track_caller]
pub fn smp_mb() {
    if !omitted(Location::caller()) {
        fence(Ordering::SeqCst);
    }
}

/// `dmb ishld`, modelled as an Acquire fence.
#[track_caller]
pub fn smp_rmb() {
    if !omitted(Location::caller()) {
        fence(Ordering::Acquire);
    }
}

/// `dmb ishst`, modelled as a Release fence (stronger than the hardware: see `src/machine.rs`).
#[track_caller]
pub fn smp_wmb() {
    if !omitted(Location::caller()) {
        fence(Ordering::Release);
    }
}

/// A spin-wait hint: under loom, let another thread run.
pub fn cpu_relax() {
    loom::thread::yield_now();
}

/// Waits until `done()`, as an RCU extended quiescent state (as the firmware's blocking wait
/// is). No WFE: the waiter re-checks after the other threads have run.
pub fn wait_event(mut done: impl FnMut() -> bool) {
    if done() {
        return;
    }
    crate::rcu::eqs_enter();
    while !done() {
        loom::thread::yield_now();
    }
    crate::rcu::eqs_exit();
}

/// `dsb ishst; sev`: nothing to do, waiters in the model poll.
pub fn wake_up_all() {}

/// The firmware's `Completion` (smp). It blocks on a loom condition variable instead of polling
/// like [`wait_event`]: with two or more waiters polling at once, loom explores schedules in
/// which they take turns forever and gives up on the model. A completion that is never
/// signalled leaves its waiter blocked, which loom reports as a deadlock (a lost hand-off).
pub struct Completion {
    done: loom::sync::Mutex<bool>,
    signalled: loom::sync::Condvar,
}

impl Completion {
    /// Done after one `complete`.
    pub fn new() -> Self {
        Completion { done: loom::sync::Mutex::new(false), signalled: loom::sync::Condvar::new() }
    }

    /// Signals it: the mutex orders what the signaller did before it for the waiter (the
    /// firmware's Release, paired with the waiter's Acquire).
    pub fn complete(&self) {
        *self.done.lock().unwrap() = true;
        self.signalled.notify_all();
    }

    /// Waits until it has been signalled, as an RCU extended quiescent state.
    pub fn wait(&self) {
        crate::rcu::eqs_enter();
        let mut done = self.done.lock().unwrap();
        while !*done {
            done = self.signalled.wait(done).unwrap();
        }
        drop(done);
        crate::rcu::eqs_exit();
    }
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

/// The firmware's `spin::Mutex`, as a loom mutex with the same `lock`.
pub struct Mutex<T>(loom::sync::Mutex<T>);

impl<T> Mutex<T> {
    /// An unlocked mutex.
    pub fn new(v: T) -> Self {
        Mutex(loom::sync::Mutex::new(v))
    }

    /// Takes it.
    pub fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

/// This core's per-core base (the firmware's TPIDR_EL1): here the core number.
#[derive(Clone, Copy)]
pub struct PercpuBase(usize);

/// Reads this core's base.
pub fn percpu_base() -> PercpuBase {
    PercpuBase(cpu_id())
}

/// The firmware's per-cpu allocation failure (never happens in the model).
#[derive(Debug)]
pub struct PerCpuAllocError;

/// One `u32` slot per core. Only its own core adds to a slot (the firmware's restartable
/// load-add-store), so a relaxed `fetch_add` is the same thing; others only read it.
pub struct PerCpuBox<T> {
    slots: Vec<AtomicU32>,
    _t: PhantomData<T>,
}

impl PerCpuBox<u32> {
    /// Every core's slot set to `init`.
    pub fn new(init: u32) -> Result<Self, PerCpuAllocError> {
        Ok(PerCpuBox { slots: (0..NR_CPUS).map(|_| AtomicU32::new(init)).collect(), _t: PhantomData })
    }

    /// `this_cpu_add`: no barrier.
    pub fn this_cpu_add(&self, delta: u32) {
        self.slots[cpu_id()].fetch_add(delta, Ordering::Relaxed);
    }

    /// `this_cpu_inc`.
    pub fn this_cpu_inc(&self) {
        self.this_cpu_add(1);
    }

    /// `this_cpu_dec`.
    pub fn this_cpu_dec(&self) {
        self.this_cpu_add(u32::MAX);
    }

    /// `this_cpu_inc` with the base already read.
    pub fn this_cpu_inc_at(&self, base: PercpuBase) {
        self.slots[base.0].fetch_add(1, Ordering::Relaxed);
    }

    /// `this_cpu_dec` with the base already read.
    pub fn this_cpu_dec_at(&self, base: PercpuBase) {
        self.slots[base.0].fetch_add(u32::MAX, Ordering::Relaxed);
    }

    /// Wrapping sum over `cpus`, relaxed loads.
    pub fn sum(&self, cpus: impl Iterator<Item = usize>) -> u32 {
        cpus.fold(0u32, |s, c| s.wrapping_add(self.slots[c].load(Ordering::Relaxed)))
    }
}

/// The firmware's `static`, as a per-execution lazy value (loom atomics have no `const` new).
macro_rules! global {
    ($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;) => {
        loom::lazy_static! { $(#[$m])* static ref $name: $t = $init; }
    };
}
pub(crate) use global;

// =============================================================================================
// percpu_ref's side of the seam (`src/sync/percpu_ref/`). Kept apart from the sections above:
// the names percpu_ref needs beyond percpu_rwsem's, the per-core counter reached through the
// word's template address, and negative controls for labelled orderings (not only fences).
// =============================================================================================

pub use loom::sync::MutexGuard;

/// Per-core slots every per-cpu counter has (the firmware's `MAX_CPUS`; cores without a thread
/// keep their slot at zero).
pub const MAX_CPUS: usize = NR_CPUS;

/// Interrupts are not modelled: masking them is nothing.
pub struct IrqGuard;

impl IrqGuard {
    /// "Masks" interrupts.
    pub fn new() -> Self {
        IrqGuard
    }
}

impl Default for IrqGuard {
    fn default() -> Self {
        Self::new()
    }
}

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

impl PerCpuBox<u32> {
    /// The address the firmware's word holds: here the slots' address, which
    /// [`this_cpu_add_u32`] indexes with the running core.
    pub fn template_addr(&self) -> usize {
        self.slots.as_ptr() as usize
    }

    /// Core `cpu`'s slot.
    pub fn remote_get(&self, cpu: usize) -> u32 {
        self.slots[cpu].load(Ordering::Relaxed)
    }

    /// Sets core `cpu`'s slot (a relaxed store, as the firmware's plain store).
    ///
    /// # Safety
    /// As on the firmware: core `cpu` is not adding to it meanwhile. The model checks what
    /// breaking that does (a lost add), not memory safety, which does not depend on it here.
    pub unsafe fn remote_set(&self, cpu: usize, v: u32) {
        self.slots[cpu].store(v, Ordering::Relaxed);
    }
}

std::thread_local! {
    // Slot arrays of dropped boxes (kept allocated; loom runs all threads on this OS thread).
    static FREED_SLOTS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl<T> Drop for PerCpuBox<T> {
    fn drop(&mut self) {
        // The firmware gives the slot back to its allocator. Here the memory is kept and its
        // address remembered, so that an add through a stale word (a broken variant's) is a
        // failure loom reports, not a use after free in the test process.
        let slots = core::mem::take(&mut self.slots);
        FREED_SLOTS.with(|f| f.borrow_mut().push(slots.as_ptr() as usize));
        core::mem::forget(slots);
    }
}

/// The firmware's `this_cpu_add_u32`: adds `delta` to this core's copy of the per-cpu `u32`
/// whose template address is `ptr` ([`PerCpuBox::template_addr`]). A relaxed load and store, as
/// the firmware's restartable `ldr`/`add`/`str` is (not an exclusive access): an add racing
/// with `remote_set` can lose either, as on the hardware.
///
/// # Safety
/// `ptr` is the template address of a `PerCpuBox<u32>` (the model keeps dropped ones' slots
/// allocated and fails an add to them).
pub unsafe fn this_cpu_add_u32(ptr: *mut u32, delta: u32) {
    // The caller's counter address is the word it loaded (Relaxed); on ARMv8 the address
    // dependency orders this access after that load. C11 has no dependency ordering: an
    // Acquire fence stands for it (stronger: it orders every earlier load).
    fence(Ordering::Acquire);
    let freed = FREED_SLOTS.with(|f| f.borrow().contains(&(ptr as usize)));
    assert!(!freed, "per-cpu counter used after it was freed");
    // SAFETY: by the caller's contract `ptr` points at the live box's NR_CPUS slots.
    let slot = unsafe { &*(ptr as *const AtomicU32).add(cpu_id()) };
    let v = slot.load(Ordering::Relaxed);
    slot.store(v.wrapping_add(delta), Ordering::Relaxed);
}

impl Clone for PerCpuAllocError {
    fn clone(&self) -> Self {
        *self
    }
}

impl Copy for PerCpuAllocError {}

impl PartialEq for PerCpuAllocError {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PerCpuAllocError {}

impl defmt::Format for PerCpuAllocError {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "PerCpuAllocError")
    }
}

// defmt on the host: percpu_ref's misuse reports go nowhere (the models read its counts).
#[defmt::global_logger]
struct NoLogger;

// SAFETY: writes nothing, so there is no frame to keep whole and nothing to lock.
unsafe impl defmt::Logger for NoLogger {
    fn acquire() {}
    unsafe fn flush() {}
    unsafe fn release() {}
    unsafe fn write(_: &[u8]) {}
}

defmt::timestamp!("");

/// The firmware's array of atomics (`[const { T::new(v) }; N]` there): built at run time,
/// since loom's atomics have no `const` constructor.
macro_rules! atomic_array {
    ($t:ident::new($v:expr); $n:expr) => {
        core::array::from_fn(|_| $t::new($v))
    };
}
pub(crate) use atomic_array;

// Negative controls for labelled orderings. The percpu_ref files label orderings and call
// sites, not only fences (`// Z: Release ...` above a compare_exchange); [`omit_label`] finds
// the code line under each such comment, and the atomics below (and the RCU stand-in's
// `call_rcu`, for G) weaken what they do at those lines: every ordering becomes Relaxed, and
// `call_rcu` skips its grace period.

const LABELLED: &[(&str, &str)] = &[
    ("src/sync/percpu_ref/mod.rs", include_str!("../../src/sync/percpu_ref/mod.rs")),
    ("src/sync/percpu_ref/mode.rs", include_str!("../../src/sync/percpu_ref/mode.rs")),
];

std::thread_local! {
    // (file, line) of every site left out; loom runs all its threads on the test's own thread.
    static OMITTED_SITES: RefCell<Vec<(&'static str, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Weakens every site labelled `label` in `file` (the first code line under each `// L: ...`
/// comment, or the comment's own line if it has code) in the model runs on this thread until
/// [`restore_labels`]; returns those lines. Panics if there is none.
pub fn omit_label(file: &'static str, label: &str) -> Vec<u32> {
    let (_, text) = LABELLED.iter().find(|(f, _)| *f == file).expect("a percpu_ref file");
    let tag = format!("// {label}:");
    let lines: Vec<&str> = text.lines().collect();
    let mut sites = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(at) = l.find(&tag) else { continue };
        let site = if l[..at].trim().is_empty() {
            (i + 1..lines.len()).find(|&j| !lines[j].trim_start().starts_with("//")).expect("code under the label")
        } else {
            i
        };
        sites.push(site as u32 + 1);
    }
    assert!(!sites.is_empty(), "no site labelled {label} in {file}");
    OMITTED_SITES.with(|o| o.borrow_mut().extend(sites.iter().map(|&l| (file, l))));
    sites
}

/// Puts every labelled site back.
pub fn restore_labels() {
    OMITTED_SITES.with(|o| o.borrow_mut().clear());
}

/// Whether the site at `at` is left out by [`omit_label`].
pub fn label_omitted(at: &Location<'_>) -> bool {
    OMITTED_SITES.with(|o| o.borrow().iter().any(|&(f, l)| l == at.line() && at.file().ends_with(f)))
}

#[track_caller]
fn order(o: Ordering) -> Ordering {
    if label_omitted(Location::caller()) {
        Ordering::Relaxed
    } else {
        o
    }
}

macro_rules! labelled_atomic {
    ($name:ident, $t:ty) => {
        /// loom's atomic of the same name, whose orderings [`omit_label`] can weaken by site.
        pub struct $name(loom::sync::atomic::$name);

        impl $name {
            /// A new atomic.
            pub fn new(v: $t) -> Self {
                Self(loom::sync::atomic::$name::new(v))
            }
            /// `load`.
            #[track_caller]
            pub fn load(&self, o: Ordering) -> $t {
                self.0.load(order(o))
            }
            /// `store`.
            #[track_caller]
            pub fn store(&self, v: $t, o: Ordering) {
                self.0.store(v, order(o))
            }
            /// `swap`.
            #[track_caller]
            pub fn swap(&self, v: $t, o: Ordering) -> $t {
                self.0.swap(v, order(o))
            }
            /// `compare_exchange` (both orderings weakened at an omitted site).
            #[track_caller]
            pub fn compare_exchange(&self, c: $t, n: $t, s: Ordering, f: Ordering) -> Result<$t, $t> {
                self.0.compare_exchange(c, n, order(s), order(f))
            }
            /// `compare_exchange_weak` (loom's never fails spuriously).
            #[track_caller]
            pub fn compare_exchange_weak(&self, c: $t, n: $t, s: Ordering, f: Ordering) -> Result<$t, $t> {
                self.0.compare_exchange_weak(c, n, order(s), order(f))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new(Default::default())
            }
        }
    };
    ($name:ident, $t:ty, int) => {
        labelled_atomic!($name, $t);

        impl $name {
            /// `fetch_add`.
            #[track_caller]
            pub fn fetch_add(&self, v: $t, o: Ordering) -> $t {
                self.0.fetch_add(v, order(o))
            }
            /// `fetch_sub`.
            #[track_caller]
            pub fn fetch_sub(&self, v: $t, o: Ordering) -> $t {
                self.0.fetch_sub(v, order(o))
            }
        }
    };
}

labelled_atomic!(AtomicBool, bool);
labelled_atomic!(AtomicI64, i64, int);
labelled_atomic!(AtomicUsize, usize, int);
