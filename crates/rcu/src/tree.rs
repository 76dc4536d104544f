//! The combining tree that collects quiescent-state reports (Linux's Tree RCU `rcu_node`s, two
//! levels): leaves of `LEAF` cores (16 by default, one GICv3 cluster) under one root whose
//! `u64` mask holds up to 64 leaves (1024 cores at the default leaf size).
//!
//! Why a tree: with a flat scan every report reads every core's `ctr` to see whether it was the
//! last one, O(N) per report and O(N^2) per grace period. With the tree a report clears one bit
//! under one leaf lock (and, for the last core of a leaf, one bit under `GP_LOCK`, the root's
//! lock): O(1) per report. The grace period's starter reads every core's `ctr` once, O(N) per
//! grace period, to leave out the cores that are idle (they report nothing while asleep: the
//! point of extended quiescent states). liburcu's "the updater scans, the readers only store"
//! would make reports free but cost the waiter an O(N) scan per poll; the tree keeps completion
//! event-driven (the last report completes the grace period, nobody polls).
//!
//! The price is a costlier set-up (its walk and its leaf locks), so at a few cores a grace
//! period costs more than with a flat scan, and the tree wins only as the cores grow. The
//! measured costs against the flat scan are in `bench/results.md` ("Grace-period cost vs
//! cores", from `make bench`) and, dated, in `docs/benchmarks.md`.
//!
//! # Protocol (grace period `g`)
//!
//! * **Set-up** ([`setup`], `GP_LOCK` held, right after D in `gp_start`): each leaf, under its
//!   lock, gets `gp = g` and `qsmask` = its online cores whose `ctr` is neither 0 (idle) nor `g`
//!   (already past a quiescent state): the starter reports for the others once, so no report
//!   has to test every core. The root's `ROOT_QSMASK` = the leaves with any. One
//!   walk over the online cores and one lock per leaf: O(N) once per grace period. Its reads
//!   follow D (store-buffering with C: a core whose new `ctr` it does not see runs its new
//!   readers after the updater's removal) and are followed by B (the idle cores' reads, complete
//!   before their `ctr = 0` by A, come before anything that completes `g`). If no core owes,
//!   `g` completes at once.
//! * **A core's own report** ([`report`]: `rcu_qs` after its `ctr = g`; `eqs_enter`, `irq_exit`
//!   and `cpu_dead` after `ctr = 0`, when a grace period is in progress): clears its bit in its
//!   leaf if the leaf is set up for that same `g` and the bit is still set (so a report is
//!   idempotent, and a report for an older grace period is ignored).
//! * A leaf whose mask reaches 0 clears its bit in the root (under `GP_LOCK`, after dropping the
//!   leaf lock: the only nesting is `GP_LOCK` -> leaf lock, in set-up); the root reaching 0
//!   completes `g` right there (B, then `DONE`), starts the next one if requested, and wakes the
//!   idle cores waiting for callbacks.
//!
//! A report that finds its leaf not yet set up for `g` is not lost: the core stored its `ctr`
//! (`g`, or `0`) before taking the leaf lock, the set-up reads `ctr` after taking the same lock,
//! so it sees that value (the lock's release and acquire order it) and leaves the core out. A
//! core that sets `ctr = g` without reporting (`eqs_exit`, `irq_enter` leaving idle) was idle
//! before: the set-up sees `0` or `g` for it and leaves it out, or (store-buffering with its
//! `eqs_enter`, which read `STARTED` after `ctr = 0`) that `eqs_enter` reported for `g` itself.
//!
//! # Cores coming online and going away
//!
//! * A core comes online (`smp::secondary_online`) by setting its `ctr` (`eqs_exit`, C), then its
//!   `ONLINE` bit, then **O**. The set-up reads `ONLINE` after D: if it sees the bit, it reads the
//!   core's `ctr` like any other's (set before the bit) and waits for it unless it is 0 or `g`;
//!   if not, the grace period does not wait for it, and by the O/D store-buffering pair
//!   the new core's first readers see the updater's removal. A core that comes online after the
//!   set-up is waited for from the next grace period on; its reports for `g` find its bit clear
//!   and change nothing.
//! * A core that parks for good (`cpu_dead`: shutdown, a Stop IPI) stores `ctr = 0` and reports
//!   like `eqs_enter`, so a grace period in progress does not wait for it; later set-ups still
//!   find it online (`ONLINE` is never cleared) and leave it out (`ctr` is 0). No core ever
//!   leaves `ONLINE`, so no grace period can end early by losing a core's bit.
//! * Every lock here is held with interrupts masked, so `cpu_dead` from inside a handler (the
//!   Stop IPI) and `irq_exit` never spin on a lock the interrupted code holds.

use super::gp::injected_skip_core;
use super::{gp_lock, CPUS, STARTED};
use crate::machine::{self, AtomicU64, AtomicUsize, IrqGuard, Mutex, MutexGuard, Ordering};

/// Most leaves: the bits of the root's mask.
pub(super) const MAX_LEAVES: usize = 64;
/// Cores per leaf by default: one GICv3 cluster (Linux's `rcu_node` leaf fan-out is 16 too).
const DEFAULT_LEAF: usize = 16;

machine::global! {
    /// Cores per leaf, set once by [`init`] before other cores start (`rcu_leaf=N` on the command
    /// line, for tests that want several leaves with few cores).
    static LEAF: AtomicUsize = AtomicUsize::new(DEFAULT_LEAF);
    /// Leaves in use (this run's cores divided by `LEAF`, rounded up); set with `LEAF`.
    static NR_LEAVES: AtomicUsize = AtomicUsize::new(1);
}

/// One leaf: its lock guards the grace period it is set up for and the cores that still owe a
/// quiescent state for it. One cache line each: the leaf's cores take it on their reports.
#[repr(align(64))]
struct Leaf {
    lock: Mutex<LeafState>,
}

struct LeafState {
    gp: u64,
    qsmask: u64,
}

machine::global_array! {
    static LEAVES: [Leaf; MAX_LEAVES] = Leaf { lock: Mutex::new(LeafState { gp: 0, qsmask: 0 }) };
}

machine::global! {
    /// The root: the grace period it is set up for and the leaves that still owe. Written only under
    /// `GP_LOCK` (the root's lock); read without it only by the stall detector, as a hint.
    static ROOT_GP: AtomicU64 = AtomicU64::new(0);
    static ROOT_QSMASK: AtomicU64 = AtomicU64::new(0);
}

/// Sets the leaf size: `asked` (clamped to 1..=64, and to at least the size that fits this
/// run's cores in 64 leaves), else 16. Sized from the cores this run set up (final before
/// `rcu::init`), not the compile-time limit: a 4-core boot has one leaf, not 32 empty ones.
pub(super) fn init(asked: Option<usize>) {
    let cores = machine::num_possible();
    let min = cores.div_ceil(MAX_LEAVES).max(1);
    let leaf = asked.unwrap_or(DEFAULT_LEAF).clamp(min, 64);
    LEAF.store(leaf, Ordering::Relaxed);
    NR_LEAVES.store(cores.div_ceil(leaf), Ordering::Relaxed);
}

/// Leaves in use.
fn nr_leaves() -> usize {
    // Relaxed: as LEAF.
    NR_LEAVES.load(Ordering::Relaxed)
}

/// Cores per leaf.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn leaf_size() -> usize {
    // Relaxed: stored once before the other cores start (their start orders it).
    LEAF.load(Ordering::Relaxed)
}

/// The leaf of `cpu` and its bit there.
#[inline]
fn place(cpu: usize) -> (usize, u64) {
    let l = leaf_size();
    (cpu / l, 1 << (cpu % l))
}

/// A leaf's lock with interrupts masked; fields drop in order, so the lock is released first.
struct LeafLocked {
    g: MutexGuard<'static, LeafState>,
    _irq: IrqGuard,
}

fn leaf_lock(i: usize) -> LeafLocked {
    let irq = IrqGuard::new();
    LeafLocked { g: LEAVES[i].lock.lock(), _irq: irq }
}

/// Sets the tree up for grace period `g` (`GP_LOCK` held, after D) and reports for the cores
/// that need not be waited for: each leaf, under its lock, gets `gp = g` and the online cores
/// (but the one fault injection skips) whose `ctr` is neither 0 (idle) nor `g` (already past a
/// quiescent state). One walk over the online cores, one lock per leaf: O(N) once per grace
/// period. Returns whether no core owes anything (the caller completes `g` at once).
pub(super) fn setup(g: u64) -> bool {
    let skip = injected_skip_core();
    let leaf = leaf_size();
    // After D: a core whose ONLINE bit this misses sees the updater's removal (O pairs with D),
    // and a ctr read here is either seen as 0/g or its core's new readers see the removal (C).
    let mut cpus = machine::online_cpus();
    let mut next = cpus.next();
    let mut root = 0;
    for i in 0..nr_leaves() {
        let (base, end) = (i * leaf, (i + 1) * leaf);
        // The ctr reads come after taking the leaf's lock: a core whose report found the leaf
        // still set up for an older grace period stored its ctr before releasing this lock, so
        // its value is seen here (the report is not lost).
        let mut l = leaf_lock(i);
        let mut m = 0u64;
        while let Some(cpu) = next.filter(|&c| c < end) {
            let v = CPUS.remote(cpu).ctr.load(Ordering::Relaxed);
            if v != 0 && v != g && Some(cpu) != skip {
                m |= 1 << (cpu - base);
            }
            next = cpus.next();
        }
        l.g.gp = g;
        l.g.qsmask = m;
        if m != 0 {
            root |= 1 << i;
        }
    }
    ROOT_GP.store(g, Ordering::Relaxed); // under GP_LOCK
    ROOT_QSMASK.store(root, Ordering::Relaxed);
    // B: the ctr values read above (each 0 or g stored after its core's A) before whatever
    // completes this grace period: DONE right away if root is 0, or later behind GP_LOCK.
    // Pairs with A in rcu_qs/eqs_enter/irq_exit/cpu_dead.
    crate::machine::smp_mb!("B@setup");
    root == 0
}

/// Core `cpu` has passed a quiescent state for grace period `g` (its `ctr` is `g` or 0, stored
/// before this call with A before and C after it). O(1): one leaf lock, and `GP_LOCK` if it was
/// the last core of its leaf.
pub(super) fn report(cpu: usize, g: u64) {
    let (i, bit) = place(cpu);
    report_leaf(i, bit, g);
}

/// Clears `mask` in leaf `i` for grace period `g`; the leaf emptying goes on to the root, and
/// the root emptying completes `g`.
fn report_leaf(i: usize, mask: u64, g: u64) {
    // Interrupts stay masked from the leaf through the root: a Stop IPI parking this core
    // between the two (its cpu_dead report finds its leaf bit already clear) would otherwise
    // leave the root's bit set, and the grace period would never end.
    let _irq = IrqGuard::new();
    {
        let mut l = leaf_lock(i);
        if l.g.gp != g || l.g.qsmask & mask == 0 {
            return; // an older grace period's report, or reported already
        }
        l.g.qsmask &= !mask;
        if l.g.qsmask != 0 {
            return;
        }
    }
    // The leaf's lock is dropped first (set-up nests leaf locks inside GP_LOCK). Only the
    // report that emptied the leaf gets here for (i, g), and the root keeps bit i until then,
    // so g cannot complete in between.
    let l = gp_lock();
    // B: this lock's acquire continues the chain of leaf-lock releases and acquires from every
    // reporter of this grace period (each stored its ctr after A, before its leaf unlock), and
    // the full barrier makes it order their read-side accesses before DONE for every observer,
    // not only for the next lock holder (Linux's smp_mb__after_unlock_lock). Pairs with A.
    crate::machine::smp_mb!("B@report_leaf");
    let root = ROOT_QSMASK.load(Ordering::Relaxed);
    if ROOT_GP.load(Ordering::Relaxed) != g || root & (1 << i) == 0 {
        return;
    }
    ROOT_QSMASK.store(root & !(1 << i), Ordering::Relaxed); // under GP_LOCK
    if root & !(1 << i) != 0 {
        return;
    }
    let done = super::gp::complete_locked(g);
    drop(l);
    super::gp::after_complete(done);
}

/// Reports for every online core found idle or already at the grace period in progress, from
/// any core (`gp_try_complete`): a safety net and a way for tests to push a grace period along;
/// nothing needs it for progress (the set-up and the cores' own reports are complete). O(N).
pub(super) fn force_pass() {
    // D': Acquire, so the ctr reads below are ordered after seeing g start (this core may not
    // be the one that started it); pairs with C through D on the starting core.
    let g = STARTED.load(crate::machine::ordering!(Acquire, "D'"));
    if g <= super::DONE.load(Ordering::Relaxed) {
        return;
    }
    let leaf = leaf_size();
    let mut cpus = machine::online_cpus().peekable();
    for i in 0..nr_leaves() {
        let (base, end) = (i * leaf, (i + 1) * leaf);
        let mut m = 0u64;
        while let Some(cpu) = cpus.next_if(|&c| c < end) {
            let v = CPUS.remote(cpu).ctr.load(Ordering::Relaxed);
            if v == 0 || v == g {
                m |= 1 << (cpu - base);
            }
        }
        if m != 0 {
            // B: the ctr values read above before the reports that may complete g; pairs with
            // A in rcu_qs/eqs_enter/irq_exit/cpu_dead.
            crate::machine::smp_mb!("B@force_pass");
            report_leaf(i, m, g);
        }
    }
}

/// Calls `f(cpu)` for each core the tree still waits for in grace period `g` (the stall
/// detector; leaf locks taken one at a time, only for leaves the root still waits for).
pub(super) fn for_each_owing(g: u64, mut f: impl FnMut(usize)) {
    if ROOT_GP.load(Ordering::Relaxed) != g {
        return;
    }
    let root = ROOT_QSMASK.load(Ordering::Relaxed);
    let leaf = leaf_size();
    for i in (0..nr_leaves()).filter(|i| root & (1 << i) != 0) {
        let m = {
            let l = leaf_lock(i);
            if l.g.gp != g {
                continue;
            }
            l.g.qsmask
        };
        for b in (0..64).filter(|b| m & (1 << b) != 0) {
            let cpu = i * leaf + b;
            if cpu < machine::nr_areas() {
                f(cpu);
            }
        }
    }
}
