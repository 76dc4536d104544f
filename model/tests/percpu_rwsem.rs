//! percpu-rwsem (`crates/sync/src/percpu_rwsem.rs`, with `crates/sync/src/rcu_sync.rs`) under loom.
//!
//! The critical sections touch a `loom::cell::UnsafeCell`: readers read it, the writer writes
//! it. loom fails an execution in which a read and the write are not ordered by happens-before,
//! so "readers and a writer exclude each other, and each sees the other's critical section" is
//! checked on every execution, not only on the interleavings where the values would differ.
//!
//! Core 0 (the main thread) is the writer, core 1 a reader. RCU is the crate's idealised
//! stand-in (`crates/platform/src/ideal_rcu.rs`).
//!
//! Each modelled core's thread makes its context (`Ctx`) at its start ([`core_ctx`]). Readers
//! and writers use the guards: `read(ctx)` .. `unlock(ctx)` is down_read .. up_read on the fast
//! path where it can be, `write(ctx)` .. drop is down_write .. up_write.
use loom::cell::UnsafeCell;
use quiescent_model::machine::{spawn_cpu, Ctx};
use quiescent_model::sync::percpu_rwsem::PercpuRwSem;
use quiescent_model::sync::RwSemaphore;
use quiescent_model::{check, check_fails_without, rcu, ForgetOnPanic};
use std::rc::Rc;

const FILE: &str = "crates/sync/src/percpu_rwsem.rs";

/// Core 0's start: the RCU stand-in registers, and the model's main thread gets core 0's
/// context.
fn boot() -> Ctx {
    // SAFETY: at the start of the model, on core 0, before any other core starts.
    unsafe { rcu::init() };
    core_ctx()
}

/// The context of the modelled core whose thread calls it, at the thread's start.
fn core_ctx() -> Ctx {
    // SAFETY: called once at the start of each modelled core's thread (the main thread for
    // core 0, a `spawn_cpu` thread for the others): that thread is the core's thread of
    // execution, RCU watches it (it is online), no other context exists on it, and it may block.
    unsafe { Ctx::new() }
}

/// The reader on core 1: `before` runs first (e.g. a quiescent point, so that the writer's
/// grace period can end before the reader arrives), then down_read, `inside` (before the
/// critical section), the read, up_read.
fn reader_vs_writer(before: fn(&mut Ctx), inside: fn(&mut Ctx)) {
    let ctx = &mut boot();
    let sem = ForgetOnPanic::new(PercpuRwSem::new().unwrap());
    let data = Rc::new(UnsafeCell::new(0u32)); // loom threads are coroutines of one OS thread
    let (s, d) = (ForgetOnPanic::new((*sem).clone()), data.clone());
    let reader = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        before(ctx);
        let g = s.read(ctx);
        inside(ctx);
        // SAFETY: loom checks this access against the writer's.
        let v = d.with(|p| unsafe { *p });
        assert!(v == 0 || v == 1);
        g.unlock(ctx);
    });
    let g = sem.write(ctx);
    // SAFETY: as the reader's.
    data.with_mut(|p| unsafe { *p = 1 });
    drop(g);
    reader.join().unwrap();
    rcu::barrier(ctx);
    assert!(sem.readers_fast(), "back on the fast path one grace period after the last writer");
}

fn nothing(_: &mut Ctx) {}

/// A reader that arrives after the writer's grace period takes the slow path: A (reader) and D
/// (writer) decide who goes first, B (reader's slow up_read) and C (writer, after the drain)
/// order the reader's critical section before the writer's.
fn slow_reader() {
    reader_vs_writer(rcu::quiescent_point, nothing)
}

/// A reader that takes the fast path, then passes a quiescent point while holding the lock
/// (allowed: it holds it by its count), so its up_read may be on the slow path (B/C).
fn reader_holding_across_qs() {
    reader_vs_writer(nothing, rcu::quiescent_point)
}

// Preemption bound 2 for every model here (written into each test).

#[test]
fn slow_path_reader_and_writer_exclude() {
    check(2, slow_reader);
}

#[test]
fn fast_path_reader_holding_across_a_quiescent_point() {
    check(2, reader_holding_across_qs);
}

#[test]
fn fast_path_reader_within_one_rcu_section() {
    check(2, || reader_vs_writer(nothing, nothing));
}

#[test]
fn negative_without_a_reader_sees_stale_block() {
    assert!(check_fails_without(FILE, "A", 2, slow_reader));
}

#[test]
fn negative_without_d_writer_misses_reader_count() {
    assert!(check_fails_without(FILE, "D", 2, slow_reader));
}

#[test]
fn negative_without_c_writer_section_starts_before_drain() {
    assert!(check_fails_without(FILE, "C", 3, slow_reader));
}

#[test]
fn negative_without_b_reader_section_leaks_past_up_read() {
    assert!(check_fails_without(FILE, "B", 3, slow_reader));
}

// The slow path's hand-off to queued waiters (`wait` and `wake`). A queued waiter blocks on its
// `Completion` (a loom condition variable in the model), so a waiter that is never granted the
// lock stays blocked and loom reports the deadlock.

/// Core 0 waits for core `cpu`'s thread as a blocking wait (an RCU extended quiescent state, as
/// every firmware wait is), so grace periods that core waits for can end meanwhile.
fn join(_ctx: &mut Ctx, t: loom::thread::JoinHandle<()>) {
    // SAFETY: a blocking wait (it takes the context `&mut`): this core holds nothing read under
    // RCU and runs no reader until the eqs_exit below.
    unsafe { rcu::eqs_enter() };
    t.join().unwrap();
    // SAFETY: pairs with the eqs_enter above.
    unsafe { rcu::eqs_exit() };
}

/// Writer on core 0; readers on cores 1 and 2 arrive after a quiescent point (so after the
/// writer's grace period they find `block` and queue), and up_write admits both. Every critical
/// section runs (counted), readers and the writer are ordered (the cell).
fn readers_queued_behind_a_writer() {
    let ctx = &mut boot();
    use loom::sync::atomic::{AtomicUsize, Ordering};
    let sem = ForgetOnPanic::new(PercpuRwSem::new().unwrap());
    let data = Rc::new(UnsafeCell::new(0u32));
    let entered = Rc::new(AtomicUsize::new(0));
    let mut ts = Vec::new();
    for cpu in 1..=2 {
        let (s, d, e) = (ForgetOnPanic::new((*sem).clone()), data.clone(), entered.clone());
        ts.push(spawn_cpu(cpu, move || {
            let ctx = &mut core_ctx();
            rcu::quiescent_point(ctx);
            let g = s.read(ctx);
            // SAFETY: loom checks this access against the writer's.
            let v = d.with(|p| unsafe { *p });
            assert!(v == 0 || v == 1);
            e.fetch_add(1, Ordering::Relaxed);
            g.unlock(ctx);
        }));
    }
    let g = sem.write(ctx);
    // SAFETY: as the readers'.
    data.with_mut(|p| unsafe { *p = 1 });
    drop(g);
    for t in ts {
        join(ctx, t);
    }
    assert_eq!(entered.load(Ordering::Relaxed), 2, "a queued reader never got in");
    rcu::barrier(ctx);
    assert!(sem.readers_fast());
}

/// A gate the test opens once: threads wait for it blocked (a loom condition variable), as an
/// RCU extended quiescent state.
struct Gate(loom::sync::Mutex<bool>, loom::sync::Condvar);

impl Gate {
    fn new() -> Rc<Gate> {
        Rc::new(Gate(loom::sync::Mutex::new(false), loom::sync::Condvar::new()))
    }

    fn open(&self) {
        *self.0.lock().unwrap() = true;
        self.1.notify_all();
    }

    fn wait(&self, _ctx: &mut Ctx) {
        // SAFETY: a blocking wait (it takes the context `&mut`): this core holds nothing read
        // under RCU and runs no reader until the eqs_exit below.
        unsafe { rcu::eqs_enter() };
        let mut open = self.0.lock().unwrap();
        while !*open {
            open = self.1.wait(open).unwrap();
        }
        drop(open);
        // SAFETY: pairs with the eqs_enter above.
        unsafe { rcu::eqs_exit() };
    }
}

/// Two writers and a reader: core 0 takes the write lock; then a reader (core 1) and a second
/// writer (core 2) arrive and queue, in either order; core 0's up_write hands the lock on in
/// FIFO order (readers up to the first writer), and the second writer's up_write admits a
/// reader queued behind it. Writers exclude each other and the reader; everyone gets in.
///
/// The second writer arrives after the first one's `block` swap is visible to it (the gate).
/// Without that, loom reports a failure that cannot happen: when its failed swap (an RMW that
/// read the first writer's 1) races with the first writer's `store(0)`, loom lets the first
/// writer then read its own 0 overwritten by the swap's 1, as if the swap came later in the
/// modification order, although the swap's read fixes it before the store (loom orders
/// stores by vector clocks, not by a total order). ARMv8 (and C11) forbid that outcome.
fn writer_queued_behind_a_reader() {
    let ctx = &mut boot();
    use loom::sync::atomic::{AtomicUsize, Ordering};
    let sem = ForgetOnPanic::new(PercpuRwSem::new().unwrap());
    let data = Rc::new(UnsafeCell::new(0u32));
    let entered = Rc::new(AtomicUsize::new(0));
    let gate = Gate::new();
    let (s, d, e, g) = (ForgetOnPanic::new((*sem).clone()), data.clone(), entered.clone(), gate.clone());
    let reader = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        g.wait(ctx);
        let held = s.read(ctx);
        // SAFETY: loom checks this access against the writers'.
        let v = d.with(|p| unsafe { *p });
        assert!(v == 1 || v == 2);
        e.fetch_add(1, Ordering::Relaxed);
        held.unlock(ctx);
    });
    let (s, d, e, g) = (ForgetOnPanic::new((*sem).clone()), data.clone(), entered.clone(), gate.clone());
    let writer = spawn_cpu(2, move || {
        let ctx = &mut core_ctx();
        g.wait(ctx);
        let held = s.write(ctx);
        // SAFETY: loom checks this access against the other sections'.
        d.with_mut(|p| unsafe { *p += 1 });
        e.fetch_add(1, Ordering::Relaxed);
        drop(held);
    });
    let held = sem.write(ctx);
    gate.open();
    // SAFETY: as the second writer's.
    data.with_mut(|p| unsafe { *p += 1 });
    entered.fetch_add(1, Ordering::Relaxed);
    drop(held);
    join(ctx, reader);
    join(ctx, writer);
    assert_eq!(entered.load(Ordering::Relaxed), 3, "a queued waiter never got in");
    // SAFETY: every other core has finished.
    assert_eq!(data.with(|p| unsafe { *p }), 2);
    rcu::barrier(ctx);
    assert!(sem.readers_fast());
}

#[test]
fn handoff_admits_every_queued_reader() {
    check(2, readers_queued_behind_a_writer); // preemption bound 2
}

#[test]
fn handoff_writer_queued_behind_a_reader() {
    check(2, writer_queued_behind_a_reader); // preemption bound 2
}

// The two counts (per-core for the fast path, `slow_count` for the slow paths) and the writer's
// fold of the first into the second.

/// Writer on core 0; core 1 takes the lock on the fast path and holds it across a quiescent
/// point (so its up_read may be on the slow path, after the writer folded its per-core count
/// into `slow_count`), core 2 arrives after a quiescent point (so it may take the slow path, or
/// queue). The writer must wait for both, whichever path each took and released on.
fn fast_and_slow_readers_vs_writer() {
    let ctx = &mut boot();
    let sem = ForgetOnPanic::new(PercpuRwSem::new().unwrap());
    let data = Rc::new(UnsafeCell::new(0u32));
    let mut ts = Vec::new();
    for cpu in 1..=2 {
        let (s, d) = (ForgetOnPanic::new((*sem).clone()), data.clone());
        ts.push(spawn_cpu(cpu, move || {
            let ctx = &mut core_ctx();
            if cpu == 2 {
                rcu::quiescent_point(ctx);
            }
            let g = s.read(ctx);
            if cpu == 1 {
                rcu::quiescent_point(ctx);
            }
            // SAFETY: loom checks this access against the writer's.
            let v = d.with(|p| unsafe { *p });
            assert!(v == 0 || v == 1);
            g.unlock(ctx);
        }));
    }
    let g = sem.write(ctx);
    // SAFETY: as the readers'.
    data.with_mut(|p| unsafe { *p = 1 });
    drop(g);
    for t in ts {
        join(ctx, t);
    }
    assert!(!sem.is_read_locked(), "the read count is back to zero");
    rcu::barrier(ctx);
    assert!(sem.readers_fast());
}

/// A reader takes the lock on the slow path while a first writer is inside (counted in
/// `slow_count`, maybe by the waker) and releases it once the rcu_sync is idle again, on the fast
/// path: its core's count goes to -1 (wrapping) and `slow_count` stays at +1, a total of 0. Or
/// it releases it on the slow path if the second writer has already arrived. The second writer
/// folds whatever is there and must wait for the reader exactly when it still holds the lock.
fn reader_released_on_the_other_path() {
    let ctx = &mut boot();
    let sem = ForgetOnPanic::new(PercpuRwSem::new().unwrap());
    let data = Rc::new(UnsafeCell::new(0u32));
    let gate = Gate::new();
    let held = sem.write(ctx);
    let (s, d, g) = (ForgetOnPanic::new((*sem).clone()), data.clone(), gate.clone());
    let reader = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        let held = s.read(ctx); // the writer is inside: the slow path
        g.wait(ctx);
        // SAFETY: loom checks this access against the writers'.
        let v = d.with(|p| unsafe { *p });
        assert!(v == 1 || v == 2);
        held.unlock(ctx);
    });
    // SAFETY: as the reader's.
    data.with_mut(|p| unsafe { *p = 1 });
    drop(held);
    rcu::barrier(ctx); // back to IDLE: the reader's up_read may take the fast path
    gate.open();
    let held = sem.write(ctx);
    // SAFETY: as the reader's.
    data.with_mut(|p| unsafe { *p = 2 });
    drop(held);
    join(ctx, reader);
    assert!(!sem.is_read_locked(), "per-core -1 and slow +1, or both folded: a total of zero");
    rcu::barrier(ctx);
    assert!(sem.readers_fast());
}

#[test]
/// Without rcu_sync's grace period on entry (G) a fast-path reader can still be adding to its
/// per-core count while the writer folds and zeroes it, or be inside while the writer is: the
/// counts are frozen only because of G. (The model's per-core add is a load and a store, as on
/// the firmware, so an add racing with the zeroing can lose either.)
fn negative_without_rcu_sync_g_counts_are_not_frozen() {
    assert!(check_fails_without("crates/sync/src/rcu_sync.rs", "G", 2, fast_and_slow_readers_vs_writer));
}

#[test]
fn fast_and_slow_readers_both_waited_for() {
    check(2, fast_and_slow_readers_vs_writer); // preemption bound 2
}

#[test]
fn reader_released_on_the_other_path_than_it_took() {
    check(2, reader_released_on_the_other_path); // preemption bound 2
}

/// The reader on core 1 takes the lock (on the fast path, unless the writer is ahead) and drops
/// its guard inside a quiescent wait's condition, where RCU does not watch its core: the
/// release must take the slow path there (the writer's grace period does not wait for a core in
/// an extended quiescent state, so a fast-path decrement could land after the writer's fold),
/// and the writer must still wait for it.
fn read_guard_dropped_unwatched() {
    let ctx = &mut boot();
    let sem = ForgetOnPanic::new(PercpuRwSem::new().unwrap());
    let data = Rc::new(UnsafeCell::new(0u32));
    let (s, d) = (ForgetOnPanic::new((*sem).clone()), data.clone());
    let reader = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        let g = s.read(ctx);
        // SAFETY: loom checks this access against the writer's.
        let v = d.with(|p| unsafe { *p });
        assert!(v == 0 || v == 1);
        let mut g = Some(g);
        rcu::wait_quiescent(ctx, || {
            drop(g.take());
            false
        });
    });
    let g = sem.write(ctx);
    // SAFETY: as the reader's.
    data.with_mut(|p| unsafe { *p = 1 });
    drop(g);
    join(ctx, reader);
    assert!(!sem.is_read_locked(), "the dropped guard's hold was released");
}

#[test]
fn read_guard_dropped_where_rcu_does_not_watch() {
    check(2, read_guard_dropped_unwatched);
}
