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
pub use loom::sync::atomic::{AtomicIsize, AtomicU32, AtomicU64, AtomicUsize};

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

/// The firmware's `Completion` (smp), over [`wait_event`].
pub struct Completion {
    remaining: AtomicUsize,
}

impl Completion {
    /// Done after one `complete`.
    pub fn new() -> Self {
        Completion { remaining: AtomicUsize::new(1) }
    }

    /// Signals it: Release, pairs with the Acquire in `wait`.
    pub fn complete(&self) {
        self.remaining.fetch_sub(1, Ordering::Release);
    }

    /// Waits until it has been signalled.
    pub fn wait(&self) {
        wait_event(|| self.remaining.load(Ordering::Acquire) == 0);
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
