//! RCU models of progress and of the paths `tests/rcu.rs` does not reach (from a review as RCU
//! maintainers would do it): two cores' requests where one finds its grace period already
//! requested behind one in progress (`request`'s fast path), an idle core that passed a
//! quiescent point before sleeping with a callback (barrier E is needed), the callback ring
//! after it has wrapped, and D' with the pass on a third core.
use quiescent_model::check;
use quiescent_model::machine::{self, spawn_cpu, Ctx};
use quiescent_rcu as rcu;
use std::rc::Rc;

#[derive(Clone, Copy)]
struct SendPtr<T>(*const T);
// SAFETY: loom runs every model thread on the test's OS thread.
unsafe impl<T> Send for SendPtr<T> {}

fn boot() -> Ctx {
    // SAFETY: start of the model, core 0, before any other core.
    unsafe { rcu::init(rcu::Config { leaf_size: None }) };
    machine::boot_cpu_online();
    // SAFETY: the model's main thread is core 0's thread of execution.
    unsafe { Ctx::new() }
}

/// Queues `n` callbacks on this core, then drives grace periods as the idle loop and tick would
/// until all have run.
fn queue_and_drive(ctx: &mut Ctx, n: usize) {
    let ran = Rc::new(core::cell::Cell::new(0usize));
    for _ in 0..n {
        let r2 = SendPtr(Rc::into_raw(ran.clone()));
        rcu::call_rcu(move |_| {
            let r2 = r2;
            // SAFETY: leaked above, released once here.
            let r = unsafe { Rc::from_raw(r2.0) };
            r.set(r.get() + 1);
        });
    }
    while ran.get() < n {
        rcu::rcu_quiescent_state(ctx);
        if ran.get() < n {
            rcu::stats::gp_try_complete();
            machine::cpu_relax();
        }
    }
}

fn requests(n0: usize, n1: usize) {
    let mut ctx = boot();
    let r = spawn_cpu(1, move || {
        // SAFETY: core 1's thread of execution.
        let ctx = &mut unsafe { Ctx::new() };
        queue_and_drive(ctx, n1);
    });
    queue_and_drive(&mut ctx, n0);
    // SAFETY: core 0 holds nothing read under RCU until eqs_exit.
    unsafe { rcu::platform::eqs_enter() };
    r.join().unwrap();
    // SAFETY: pairs with eqs_enter.
    unsafe { rcu::platform::eqs_exit() };
}

/// `tests/rcu.rs`'s `concurrent_grace_period_requests_each_complete` has each core request once:
/// its fast path then only returns when the grace period it needs is started (or being
/// started in the same GP_LOCK section). Here core 1 queues a second callback, which can find
/// REQUESTED = STARTED + 1 stored by core 0's slow path while core 1's grace period was in
/// progress: the case `request`'s comment argues from (its completion must start the next).
/// (Counted with a probe in the fast path, at bound 2: the one-request model takes it 619 times,
/// never behind a grace period in progress; this one 1981 times.)
#[test]
fn concurrent_requests_fast_path_behind_a_grace_period_in_progress() {
    check(2, || requests(1, 2));
}

// ---------------------------------------------------------------------------------------------
// E: an idle core whose callbacks' grace period another core completes.
// ---------------------------------------------------------------------------------------------

/// As `tests/rcu.rs`'s `idle_core_with_callbacks`, but core 1 passes a quiescent point between its
/// `call_rcu` and its sleep (as the idle loop does after every work item). Its own bit is then
/// cleared before it publishes `wake_for_gp`, so the leaf lock no longer carries that store to
/// the completer: only E (and the second barrier of `eqs_enter`) make one of the two see the
/// other.
fn idle_core_after_qs_with_callbacks() {
    let mut ctx = boot();
    let slept = Rc::new(core::cell::Cell::new(false));
    let ran = Rc::new(core::cell::Cell::new(false));
    let sl = slept.clone();
    let ran1 = SendPtr(Rc::into_raw(ran.clone()));
    let r = spawn_cpu(1, move || {
        // SAFETY: core 1's thread of execution.
        let ctx = &mut unsafe { Ctx::new() };
        rcu::call_rcu(move |_| {
            let ran1 = ran1;
            // SAFETY: leaked above, released once here.
            unsafe { Rc::from_raw(ran1.0) }.set(true);
        });
        rcu::rcu_quiescent_state(ctx);
        // SAFETY: the idle loop's sleep: nothing read under RCU is held, no reader follows.
        sl.set(unsafe { rcu::platform::idle_enter() });
    });
    machine::cpu_relax();
    rcu::rcu_quiescent_state(&mut ctx);
    r.join().unwrap();
    // Core 1 went to sleep with its callback still queued, and its grace period has completed:
    // the completer must have sent it the Wake IPI.
    if slept.get() && !ran.get() && rcu::stats::completed() >= 2 {
        assert!(machine::ipi::woken(1), "an idle core with ready callbacks was left asleep");
    }
    if !ran.get() {
        // The callback is still queued on core 1, whose thread has ended: drop the leaked Rc.
        // SAFETY: the callback will never run in this execution.
        unsafe { Rc::decrement_strong_count(Rc::as_ptr(&ran)) };
    }
}

#[test]
fn idle_core_after_qs_with_callbacks_is_woken() {
    check(3, idle_core_after_qs_with_callbacks);
}

#[test]
fn negative_without_e_idle_core_after_qs() {
    assert!(quiescent_model::check_fails_without("crates/rcu/src/gp.rs", "E", 3, idle_core_after_qs_with_callbacks));
}

// ---------------------------------------------------------------------------------------------
// D': gp_try_complete's pass from a third core.
// ---------------------------------------------------------------------------------------------

struct Obj {
    val: loom::cell::UnsafeCell<u32>,
}

struct Shared {
    p: machine::AtomicPtr<Obj>,
    old: *mut Obj,
    new: *mut Obj,
}

impl Shared {
    fn new() -> Rc<Self> {
        let old = Box::into_raw(Box::new(Obj { val: loom::cell::UnsafeCell::new(1) }));
        let new = Box::into_raw(Box::new(Obj { val: loom::cell::UnsafeCell::new(1) }));
        let s = Shared { p: machine::AtomicPtr::new(old), old, new };
        s.p.load(machine::Ordering::Relaxed);
        Rc::new(s)
    }
    fn read(&self, ctx: &machine::AtomicCtx) {
        let g = rcu::read(ctx);
        let p = rcu::rcu_dereference(&self.p, &g);
        // SAFETY: both objects live until Shared is dropped.
        let v = unsafe { (*p).val.with(|v| *v) };
        assert_eq!(v, 1, "a reader saw a retired object");
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: allocated in new, freed once.
        unsafe {
            drop(Box::from_raw(self.old));
            drop(Box::from_raw(self.new));
        }
    }
}

/// Core 1 reads, sleeps (idle_enter/idle_exit), reads; core 2 pushes the grace period along
/// with gp_try_complete (the tree's force_pass, from a core that did not start it); core 0
/// replaces, synchronize_rcu, retires.
fn third_core_force_pass() {
    let mut ctx = boot();
    let s = Shared::new();
    let s1 = s.clone();
    let r1 = spawn_cpu(1, move || {
        // SAFETY: core 1's thread of execution.
        let ctx = &mut unsafe { Ctx::new() };
        s1.read(ctx);
        // SAFETY: the idle loop's sleep.
        unsafe { rcu::platform::idle_enter() };
        // SAFETY: pairs with idle_enter.
        unsafe { rcu::platform::idle_exit() };
        s1.read(ctx);
    });
    let r2 = spawn_cpu(2, move || {
        // SAFETY: core 2's thread of execution (it only pushes).
        let _ctx = unsafe { Ctx::new() };
        rcu::stats::gp_try_complete();
    });
    rcu::rcu_assign_pointer(&s.p, s.new);
    rcu::synchronize_rcu(&mut ctx);
    // SAFETY: after the grace period.
    unsafe { (*s.old).val.with_mut(|v| *v = 0) };
    r1.join().unwrap();
    r2.join().unwrap();
}

#[test]
fn third_core_force_pass_keeps_reader() {
    check(2, third_core_force_pass);
}

/// D' stays undetectable with the pass on a third core too (also none at bound 3: 478712
/// executions, 44 s). In C11 the Acquire load pairs with nothing: `gp_start` stores STARTED
/// Relaxed and D follows the store, so no release precedes it. D' is an ARMv8 argument (LDAR
/// orders the pass's `ctr` loads; other-multi-copy atomicity does the rest).
#[test]
fn barrier_d_prime_not_detectable_with_three_cores() {
    assert!(!quiescent_model::check_fails_without("crates/rcu/src/tree.rs", "D'", 2, third_core_force_pass));
}

// ---------------------------------------------------------------------------------------------
// The callback ring after it has wrapped.
// ---------------------------------------------------------------------------------------------

struct Logged {
    idx: usize,
    needs: u64,
    log: SendPtr<core::cell::RefCell<Vec<(usize, u64, u64)>>>,
    head: rcu::RcuHead,
}

// SAFETY: HEAD_OFFSET is the offset of `head`, which nothing else uses.
unsafe impl rcu::RcuHeaded for Logged {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Logged, head);
}

impl Drop for Logged {
    fn drop(&mut self) {
        // SAFETY: the log outlives every callback; loom runs on one OS thread.
        unsafe { &*self.log.0 }.borrow_mut().push((self.idx, self.needs, rcu::stats::completed()));
    }
}

/// `tests/rcu.rs`'s `callback_ring_overflow` explores one execution and never pushes after the
/// ring has wrapped (`first` is 0 at every push). Here three segments run first (`first` = 3),
/// then six objects for six grace periods fill slots 3, 0, 1, 2 and overflow into slot 2 twice,
/// the last one with core 1 holding its grace period open.
fn callback_ring_wraps_then_overflows() {
    let mut ctx = boot();
    let log = Rc::new(core::cell::RefCell::new(Vec::new()));
    let queue = |idx: usize| {
        let needs = rcu::stats::started() + 1;
        rcu::kfree_rcu(Box::new(Logged { idx, needs, log: SendPtr(Rc::as_ptr(&log)), head: rcu::RcuHead::new() }));
        needs
    };
    let complete_idle = || {
        // SAFETY: core 0 holds nothing read under RCU and runs no reader until eqs_exit.
        unsafe { rcu::platform::eqs_enter() };
        rcu::stats::gp_try_complete();
        // SAFETY: pairs with eqs_enter.
        unsafe { rcu::platform::eqs_exit() };
    };
    for idx in 0..3 {
        queue(idx);
        complete_idle();
    }
    rcu::rcu_quiescent_state(&mut ctx);
    assert_eq!(log.borrow().len(), 3);
    for idx in 3..8 {
        queue(idx);
        complete_idle();
    }
    let (online_tx, online_rx) = loom::sync::mpsc::channel();
    let (done_tx, done_rx) = loom::sync::mpsc::channel::<()>();
    let r = spawn_cpu(1, move || {
        online_tx.send(()).unwrap();
        done_rx.recv().unwrap();
    });
    online_rx.recv().unwrap();
    let last = queue(8);
    rcu::rcu_quiescent_state(&mut ctx);
    assert!(rcu::stats::completed() < last);
    let ran: Vec<usize> = log.borrow().iter().map(|&(i, _, _)| i).collect();
    assert_eq!(ran, [0, 1, 2, 3, 4, 5], "after the wrap, the segment holding 6..=8 waits for the open grace period");
    done_tx.send(()).unwrap();
    r.join().unwrap();
    rcu::rcu_quiescent_state(&mut ctx);
    let l = log.borrow();
    assert_eq!(l.len(), 9);
    for (k, &(idx, needs, done)) in l.iter().enumerate() {
        assert_eq!(idx, k, "out of queue order");
        assert!(done >= needs, "object {idx} freed before its grace period");
    }
}

#[test]
fn callback_ring_wraps_then_overflows_into_the_last_segment() {
    check(1, callback_ring_wraps_then_overflows);
}
