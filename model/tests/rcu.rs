//! The firmware's RCU (`crates/rcu/src/`, compiled in as `firmware_rcu`) under loom.
//!
//! An updater on core 0 publishes a new object and retires the old one after a grace period
//! (writes its `loom::cell::UnsafeCell`); readers on core 1 read the object they find. loom
//! fails every execution in which a reader's read of the old object is not ordered before the
//! retiring write by happens-before, so "a grace period waits for every reader that began
//! before it" is checked on every execution, not only on those where the values would differ;
//! the reader also asserts it never sees a retired object. Both objects are initialised before
//! the reader starts: `rcu_dereference` is a Relaxed load whose address dependency orders the
//! reader on ARMv8, which C11 (and loom) has no notion of; publication is not what these models
//! check.
//!
//! Nothing drives grace periods but the models' own threads (no tick): where the firmware's tick
//! would push a grace period along, a model calls `gp_try_complete` (a pass over the cores).
//!
//! Each modelled core's thread makes its context (`Ctx`) at its start and passes it to what
//! may pass a quiescent point; interrupt handlers and callbacks get an `&AtomicCtx`.
//!
//! Each model names its preemption bound; `--nocapture` prints the executions explored.
use loom::cell::UnsafeCell;
use quiescent_model::machine::{self, ipi, raise_irq, spawn_cpu, AtomicCtx, AtomicPtr, Ctx, IrqAt, Ordering};
use quiescent_model::{check, check_fails_without};
use quiescent_rcu as rcu;
use std::rc::Rc;

const QS: &str = "crates/rcu/src/qs.rs";
const GP: &str = "crates/rcu/src/gp.rs";
const TREE: &str = "crates/rcu/src/tree.rs";

/// An RCU-protected object: 1 while live, 0 once retired.
struct Obj {
    val: UnsafeCell<u32>,
}

/// The pointer readers follow and the two objects it points to in turn.
struct Shared {
    p: AtomicPtr<Obj>,
    old: *mut Obj,
    new: *mut Obj,
}

impl Shared {
    fn new() -> Rc<Self> {
        let old = Box::into_raw(Box::new(Obj { val: UnsafeCell::new(1) }));
        let new = Box::into_raw(Box::new(Obj { val: UnsafeCell::new(1) }));
        let s = Shared { p: AtomicPtr::new(old), old, new };
        // The model's AtomicPtr becomes a loom atomic at its first access: before the readers
        // start, so that they are ordered after its creation.
        s.p.load(Ordering::Relaxed);
        Rc::new(s)
    }

    /// A read-side critical section: the object the pointer leads to must be live.
    fn read(&self, ctx: &AtomicCtx) {
        let g = rcu::read(ctx);
        let p = rcu::rcu_dereference(&self.p, &g);
        // SAFETY: both objects live until Shared is dropped, after every thread has finished.
        let v = unsafe { (*p).val.with(|v| *v) };
        assert_eq!(v, 1, "a reader saw a retired object");
    }

    /// The update: unpublish the old object.
    fn replace(&self) {
        rcu::rcu_assign_pointer(&self.p, self.new);
    }

    /// Retire the old object (a write that every earlier reader must happen before).
    fn retire(&self) {
        // SAFETY: as in read.
        unsafe { (*self.old).val.with_mut(|v| *v = 0) };
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: allocated in new, freed once, after every reader has finished.
        unsafe {
            drop(Box::from_raw(self.old));
            drop(Box::from_raw(self.new));
        }
    }
}

std::thread_local! {
    /// The RCU tree's leaf size the models on this test's thread boot with (`None`: the
    /// default). Set outside the models (loom runs every model thread on the test's own thread):
    /// not part of the state loom explores.
    static LEAF_SIZE: core::cell::Cell<Option<usize>> = const { core::cell::Cell::new(None) };
}

/// Every model starts here: RCU registers its hooks, core 0 comes online; returns core 0's
/// context (the model's main thread is core 0's thread of execution) and the shared object.
fn boot() -> (Ctx, Rc<Shared>) {
    // SAFETY: at the start of the model, on core 0, before any other core starts or any
    // interrupt is taken.
    unsafe { rcu::init(rcu::Config { leaf_size: LEAF_SIZE.get() }) };
    machine::boot_cpu_online();
    // SAFETY: the model's main thread is core 0's thread of execution: RCU watches it (it just
    // came online), no other context exists on it, and it may block.
    (unsafe { Ctx::new() }, Shared::new())
}

/// Core 1 runs `reader` on the shared object; returns core 0's context, the object and core 1.
fn boot_with_reader(reader: fn(&Shared, &mut Ctx)) -> (Ctx, Rc<Shared>, loom::thread::JoinHandle<()>) {
    let (ctx, s) = boot();
    let s1 = s.clone();
    let r = spawn_cpu(1, move || {
        // SAFETY: the model's core thread is that core's thread of execution (spawn_cpu brought
        // it online), and it makes no other context.
        let ctx = &mut unsafe { Ctx::new() };
        reader(&s1, ctx)
    });
    (ctx, s, r)
}

/// Core 1 runs `reader`; core 0 replaces the object, waits in `synchronize_rcu` and retires it.
fn updater_vs(reader: fn(&Shared, &mut Ctx)) {
    let (mut ctx, s, r) = boot_with_reader(reader);
    s.replace();
    rcu::synchronize_rcu(&mut ctx);
    s.retire();
    r.join().unwrap();
}

/// As [`updater_vs`], with Linux's polling API: core 0 takes a cookie that starts no grace
/// period (`get_state_synchronize_rcu`), waits for it with `cond_synchronize_rcu` (which must
/// start it), checks it with `poll_state_synchronize_rcu`, and retires.
fn updater_with_cookie_vs(reader: fn(&Shared, &mut Ctx)) {
    let (mut ctx, s, r) = boot_with_reader(reader);
    s.replace();
    let cookie = rcu::get_state_synchronize_rcu();
    rcu::cond_synchronize_rcu(&mut ctx, cookie);
    assert!(rcu::poll_state_synchronize_rcu(cookie), "cond_synchronize_rcu returned early");
    // An old cookie (and the always-completed one) waits for nothing.
    rcu::cond_synchronize_rcu(&mut ctx, cookie);
    rcu::cond_synchronize_rcu(&mut ctx, rcu::get_completed_synchronize_rcu());
    s.retire();
    r.join().unwrap();
}

/// A reader, a quiescent point (`rcu_quiescent_state`, as between two work items), a reader.
fn reader_passing_a_quiescent_point(s: &Shared, ctx: &mut Ctx) {
    s.read(ctx);
    rcu::rcu_quiescent_state(ctx);
    s.read(ctx);
}

/// A reader, the idle loop's sleep (`idle_enter` .. `idle_exit`: an extended quiescent state),
/// a reader.
fn reader_going_idle(s: &Shared, ctx: &mut Ctx) {
    s.read(ctx);
    // SAFETY: the idle loop's sleep: the read section above has ended and nothing read under it
    // is held, and this core runs no reader until idle_exit (interrupts are not masked, but
    // this model takes none on this core).
    assert!(unsafe { rcu::platform::idle_enter() }, "no callbacks: the core may sleep");
    // SAFETY: pairs with the idle_enter above.
    unsafe { rcu::platform::idle_exit() };
    s.read(ctx);
}

/// An interrupt handler reading while its core is in an extended quiescent state (a blocking
/// wait): irq_enter makes it a reader the grace period waits for (I), irq_exit returns (J).
fn handler_reading_in_eqs(s: &Shared, _ctx: &mut Ctx) {
    // SAFETY: a blocking wait's extended quiescent state: this core holds nothing read under
    // RCU, and reads only in the interrupt handler (which irq_enter makes a reader).
    unsafe { rcu::platform::eqs_enter() };
    let s = s as *const Shared;
    // SAFETY: the handler runs now, on this thread, while `s` is borrowed.
    machine::irq(|actx| unsafe { (*s).read(actx) });
    // SAFETY: pairs with the eqs_enter above.
    unsafe { rcu::platform::eqs_exit() };
}

/// An interrupt taken inside `eqs_exit` between its `ctr` store and C: the handler runs on a
/// core that is not idle (K orders the interrupted store before the handler's reads).
fn handler_inside_eqs_exit(s: &Shared, _ctx: &mut Ctx) {
    // SAFETY: as in handler_reading_in_eqs.
    unsafe { rcu::platform::eqs_enter() };
    let sp = s as *const Shared;
    // SAFETY: taken at the next barrier, inside eqs_exit below, while `s` is borrowed.
    raise_irq(IrqAt::BeforeBarrier, move |actx| unsafe { (*sp).read(actx) });
    // SAFETY: pairs with the eqs_enter above.
    unsafe { rcu::platform::eqs_exit() };
    assert!(!machine::irq_pending());
}

/// An interrupt taken inside `eqs_enter` between A and its `ctr = 0`: K' orders the handler's
/// reads before the interrupted code's store.
fn handler_inside_eqs_enter(s: &Shared, _ctx: &mut Ctx) {
    let sp = s as *const Shared;
    // SAFETY: taken at the next barrier, inside eqs_enter below, while `s` is borrowed.
    raise_irq(IrqAt::AfterBarrier, move |actx| unsafe { (*sp).read(actx) });
    // SAFETY: as in handler_reading_in_eqs (the handler taken inside it is the reader).
    unsafe { rcu::platform::eqs_enter() };
    assert!(!machine::irq_pending());
    // SAFETY: pairs with the eqs_enter above.
    unsafe { rcu::platform::eqs_exit() };
}

// ---------------------------------------------------------------------------------------------
// Grace periods.
// ---------------------------------------------------------------------------------------------

#[test]
fn grace_period_waits_for_reader_passing_quiescent_state() {
    check(3, || updater_vs(reader_passing_a_quiescent_point)); // preemption bound 3
}

#[test]
fn grace_period_waits_for_reader_going_idle_and_back() {
    check(3, || updater_vs(reader_going_idle)); // preemption bound 3
}

/// A leaf size of 1: each core is a leaf of its own, so the last report goes on to the root's mask
/// under GP_LOCK (with the default 16-core leaves the model's cores share one leaf).
#[test]
fn grace_period_with_one_core_per_leaf() {
    LEAF_SIZE.set(Some(1));
    check(3, || updater_vs(reader_passing_a_quiescent_point)); // preemption bound 3
    check(3, || updater_vs(reader_going_idle)); // preemption bound 3
}

// ---------------------------------------------------------------------------------------------
// call_rcu.
// ---------------------------------------------------------------------------------------------

/// Core 0 replaces the object and retires the old one from a callback; it drives the grace
/// period as its idle loop and tick would (`rcu_quiescent_state`, which also runs the ready
/// callbacks, and `gp_try_complete`) until the callback has run.
fn call_rcu_after_reader(reader: fn(&Shared, &mut Ctx)) {
    let (mut ctx, s) = boot();
    let s1 = s.clone();
    let r = spawn_cpu(1, move || {
        // SAFETY: as in updater_vs.
        let ctx = &mut unsafe { Ctx::new() };
        reader(&s1, ctx)
    });
    s.replace();
    let ran = Rc::new(core::cell::Cell::new(false));
    let (s2, ran2) = (SendPtr(Rc::into_raw(s.clone())), SendPtr(Rc::into_raw(ran.clone())));
    rcu::call_rcu(move |_| {
        let (s2, ran2) = (s2, ran2);
        // SAFETY: the Rcs were leaked into these pointers above and are released here, once.
        let (s, ran) = unsafe { (Rc::from_raw(s2.0), Rc::from_raw(ran2.0)) };
        s.retire();
        ran.set(true);
    });
    while !ran.get() {
        rcu::rcu_quiescent_state(&mut ctx);
        if !ran.get() {
            rcu::stats::gp_try_complete();
            machine::cpu_relax();
        }
    }
    r.join().unwrap();
}

/// A pointer the callback carries: `call_rcu` wants `Send`, and loom's threads all run on the
/// test's own OS thread (the `Rc`s never leave it).
#[derive(Clone, Copy)]
struct SendPtr<T>(*const T);
// SAFETY: see above: every loom thread of a model is a coroutine on one OS thread.
unsafe impl<T> Send for SendPtr<T> {}

#[test]
fn call_rcu_callback_runs_after_the_reader() {
    check(3, || call_rcu_after_reader(reader_passing_a_quiescent_point)); // preemption bound 3
}

// ---------------------------------------------------------------------------------------------
// Interrupts.
// ---------------------------------------------------------------------------------------------

#[test]
fn irq_in_extended_quiescent_state_is_a_reader() {
    check(3, || updater_vs(handler_reading_in_eqs)); // preemption bound 3
}

#[test]
fn irq_inside_eqs_exit_is_a_reader() {
    check(3, || updater_vs(handler_inside_eqs_exit)); // preemption bound 3
}

#[test]
fn irq_inside_eqs_enter_is_a_reader() {
    check(3, || updater_vs(handler_inside_eqs_enter)); // preemption bound 3
}

// ---------------------------------------------------------------------------------------------
// An idle core with callbacks is woken when their grace period ends (E).
// ---------------------------------------------------------------------------------------------

/// Core 1 queues a callback and goes idle; core 0 passes a quiescent state (and may complete
/// the grace period). If core 1 decided to sleep and the grace period completed, it was sent
/// the Wake IPI.
fn idle_core_with_callbacks() {
    let (mut ctx, _s) = boot();
    let slept = Rc::new(core::cell::Cell::new(false));
    let sl = slept.clone();
    let r = spawn_cpu(1, move || {
        rcu::call_rcu(|_| {});
        // SAFETY: the idle loop's sleep: this core holds nothing read under RCU and runs no
        // reader afterwards (its thread ends asleep; interrupts are not masked, but this model
        // takes none).
        sl.set(unsafe { rcu::platform::idle_enter() });
    });
    // loom explores no interleaving if core 0 reads before core 1 has run at all (its
    // exploration adds no switch before loads that later stores race with here): yield first.
    machine::cpu_relax();
    rcu::rcu_quiescent_state(&mut ctx);
    r.join().unwrap();
    // The callback's grace period is 2 (the first one).
    if slept.get() && rcu::stats::completed() >= 2 {
        assert!(ipi::woken(1), "an idle core with ready callbacks was left asleep");
    }
}

#[test]
fn idle_core_with_callbacks_is_woken() {
    check(3, idle_core_with_callbacks); // preemption bound 3
}

// ---------------------------------------------------------------------------------------------
// Negative controls: each barrier left out, loom must find the failure (preemption bound 3 for
// all: the failing interleavings need the reader to pass its barrier between two of the
// updater's steps).
// ---------------------------------------------------------------------------------------------

/// With the tree, `updater_vs` finds no failure at bound 3 (a report that goes through the leaf
/// lock is ordered by the lock's release); the `call_rcu` model, where the updater reads the
/// core's `ctr` in the set-up and in `gp_try_complete`'s pass, does.
#[test]
fn negative_without_a_in_rcu_qs() {
    assert!(check_fails_without(QS, "A@rcu_qs", 3, || call_rcu_after_reader(reader_passing_a_quiescent_point)));
}

#[test]
fn negative_without_a_in_eqs_enter() {
    assert!(check_fails_without(QS, "A@eqs_enter", 3, || updater_vs(reader_going_idle)));
}

#[test]
fn negative_without_a_in_cpu_dead() {
    assert!(check_fails_without(QS, "A@cpu_dead", 3, || updater_vs(|s, ctx| s.read(ctx))));
}

#[test]
fn negative_without_c_in_eqs_exit() {
    assert!(check_fails_without(QS, "C@eqs_exit", 3, || updater_vs(reader_going_idle)));
}

/// D in `gp_start` (after the store of STARTED, before the set-up reads ONLINE and the cores'
/// `ctr`): without it the set-up and a core going idle or offline (`ctr = 0`, a full barrier,
/// then its load of STARTED) can each miss the other's store, the core never reports and the
/// grace period never ends; loom reports the waiter's endless spin (its branch limit).
#[test]
fn negative_without_d_in_gp_start() {
    assert!(check_fails_without(GP, "D@gp_start", 3, || updater_vs(reader_passing_a_quiescent_point)));
}

#[test]
fn negative_without_d_in_snapshot() {
    assert!(check_fails_without(GP, "D@snapshot", 3, || updater_vs(reader_passing_a_quiescent_point)));
}

#[test]
fn cookie_from_get_state_waited_for_by_cond_synchronize_rcu() {
    check(3, || updater_with_cookie_vs(reader_passing_a_quiescent_point)); // preemption bound 3
}

/// The cookie is the snapshot: without D the removal is not ordered before it, and loom finds
/// a reader that sees the retired object.
#[test]
fn negative_without_d_in_snapshot_for_a_cookie() {
    assert!(check_fails_without(GP, "D@snapshot", 3, || updater_with_cookie_vs(reader_passing_a_quiescent_point)));
}

#[test]
fn negative_without_i() {
    assert!(check_fails_without(QS, "I", 3, || updater_vs(handler_reading_in_eqs)));
}

#[test]
fn negative_without_j() {
    assert!(check_fails_without(QS, "J", 3, || updater_vs(handler_reading_in_eqs)));
}

#[test]
fn negative_without_k() {
    assert!(check_fails_without(QS, "K", 3, || updater_vs(handler_inside_eqs_exit)));
}

#[test]
fn negative_without_k_prime() {
    assert!(check_fails_without(QS, "K'", 3, || updater_vs(handler_inside_eqs_enter)));
}

// ---------------------------------------------------------------------------------------------
// Barriers these models cannot show to be needed. Each test leaves the barrier out and pins
// that loom finds no failure (so a stronger loom, or a model that does show it, is noticed and
// the test becomes a negative control); its comment says why.
// ---------------------------------------------------------------------------------------------

/// C in `rcu_qs`: A lies between the core's load of STARTED and its `ctr` store, so a core that
/// reports `ctr = g` has read STARTED = g before a full barrier, and its later readers see
/// everything the updater did before D (message passing through A, on ARMv8 as in C11). C's
/// store-buffering role is left to `eqs_exit`, where no barrier separates the load and the
/// store (and where leaving C out is caught).
#[test]
fn barrier_c_in_rcu_qs_not_detectable_a_orders_the_reader() {
    assert!(!check_fails_without(QS, "C@rcu_qs", 3, || call_rcu_after_reader(reader_passing_a_quiescent_point)));
}

/// B (the tree's three sites: after the set-up's `ctr` reads, after taking GP_LOCK for a
/// leaf's last report, after `gp_try_complete`'s pass): the waiter in `synchronize_rcu`
/// continues with C (in `eqs_exit`) before it frees, and loom makes a SeqCst fence synchronise
/// with every SeqCst fence it ran earlier, A of the reader included, and the leaf locks chain
/// the reports: the order B gives is given again. On ARMv8 the Release store of DONE also
/// orders the completer's earlier `ctr` loads before it; in C11 it does not, and B is what makes
/// the reader's section happen before a third core that sees DONE. Showing that needs a model
/// in which the freeing core passes no SeqCst fence after reading DONE, which the firmware's
/// waits never do.
#[test]
fn barrier_b_not_detectable_seqcst_fences_synchronise_in_loom() {
    for site in ["B@setup", "B@report_leaf"] {
        assert!(!check_fails_without(TREE, site, 3, || updater_vs(reader_passing_a_quiescent_point)));
    }
    assert!(!check_fails_without(TREE, "B@force_pass", 3, || call_rcu_after_reader(reader_passing_a_quiescent_point)));
}

/// D' (`tree::force_pass`'s Acquire load of STARTED, `gp_try_complete`'s pass): it orders the
/// pass's `ctr` loads after the start of the grace period it reports for when the passing core
/// is not the one that started it; in the two-core model the core that calls it started the
/// grace period itself (its `call_rcu`), or reads STARTED after its own full barriers.
#[test]
fn barrier_d_prime_not_detectable_with_two_cores() {
    assert!(!check_fails_without(TREE, "D'", 3, || call_rcu_after_reader(reader_passing_a_quiescent_point)));
}

/// Q (GP_SEQ's Release store and the slow path's Acquire load): without it a core can record
/// "nothing new since GP_SEQ = s" having read an older STARTED or DONE, which only delays its
/// report or its callbacks until GP_SEQ next changes (liveness, not safety); these models have
/// other cores drive every grace period to its end, as the firmware's tick does.
#[test]
fn barrier_q_not_detectable_liveness_only() {
    assert!(!check_fails_without(QS, "Q", 3, || updater_vs(reader_passing_a_quiescent_point)));
}

// ---------------------------------------------------------------------------------------------
// The per-core callback ring (`crates/rcu/src/callbacks.rs`) and the request fast path (`gp.rs`).
// ---------------------------------------------------------------------------------------------

/// An object freed through `kfree_rcu`: its drop logs (index, the grace period it needed, the
/// grace periods completed when it ran).
struct Logged {
    idx: usize,
    needs: u64,
    log: SendPtr<core::cell::RefCell<Vec<(usize, u64, u64)>>>,
    head: rcu::RcuHead,
}

// SAFETY: HEAD_OFFSET is the offset of `head`, an RcuHead nothing else uses.
unsafe impl rcu::RcuHeaded for Logged {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Logged, head);
}

impl Drop for Logged {
    fn drop(&mut self) {
        // SAFETY: the log outlives every callback (the model ends with rcu_barrier-like passes
        // before it drops it), and loom's threads run on one OS thread.
        unsafe { &*self.log.0 }.borrow_mut().push((self.idx, self.needs, rcu::stats::completed()));
    }
}

/// Core 0 queues an object for each of five successive grace periods, and each one completes
/// while core 0 sits in an extended quiescent state, so none of its callbacks runs in between:
/// the fifth needs a segment the four-segment ring does not have and joins the last one (grace
/// period 4), which must then wait for grace period 5. Core 1 comes online (which may run a grace
/// period of its own) and holds the next one open; the sixth object joins the last segment too,
/// which now waits for that one. A
/// quiescent point on core 0 then runs the first three segments only; once core 1 is gone, the
/// rest. Each object exactly once, in queue order, none before the grace period it needed.
fn callback_ring_overflow() {
    let (mut ctx, _s) = boot();
    let log = Rc::new(core::cell::RefCell::new(Vec::new()));
    let queue = |idx: usize| {
        let needs = rcu::stats::started() + 1;
        rcu::kfree_rcu(Box::new(Logged { idx, needs, log: SendPtr(Rc::as_ptr(&log)), head: rcu::RcuHead::new() }));
        assert_eq!(rcu::stats::started(), needs, "kfree_rcu did not start the grace period it needs");
        needs
    };
    for idx in 0..5 {
        let needs = queue(idx);
        // SAFETY: core 0 holds nothing read under RCU and runs no reader until eqs_exit.
        unsafe { rcu::platform::eqs_enter() };
        rcu::stats::gp_try_complete();
        assert!(rcu::stats::completed() >= needs, "grace period {needs} did not complete with every core idle");
        // SAFETY: pairs with the eqs_enter above.
        unsafe { rcu::platform::eqs_exit() };
        assert!(log.borrow().is_empty(), "a callback ran outside a quiescent point");
    }
    let (online_tx, online_rx) = loom::sync::mpsc::channel();
    let (done_tx, done_rx) = loom::sync::mpsc::channel::<()>();
    let r = spawn_cpu(1, move || {
        online_tx.send(()).unwrap();
        done_rx.recv().unwrap(); // online, passing no quiescent state: the last grace period waits
    });
    online_rx.recv().unwrap();
    let last = queue(5);
    rcu::rcu_quiescent_state(&mut ctx);
    assert!(rcu::stats::completed() < last, "grace period {last} completed with core 1 online and not passing");
    let ran: Vec<usize> = log.borrow().iter().map(|&(idx, _, _)| idx).collect();
    assert_eq!(ran, [0, 1, 2], "with the last grace period open, only the first three segments may run");
    done_tx.send(()).unwrap();
    r.join().unwrap(); // core 1 goes offline: the last grace period no longer waits for it
    rcu::rcu_quiescent_state(&mut ctx);
    let l = log.borrow();
    assert_eq!(l.len(), 6, "{} of 6 objects freed", l.len());
    for (k, &(idx, needs, done)) in l.iter().enumerate() {
        assert_eq!(idx, k, "callbacks out of queue order");
        assert!(done >= needs, "object {idx} freed before its grace period ({done} < {needs})");
    }
}

#[test]
fn callback_ring_overflow_joins_the_last_segment() {
    check(1, callback_ring_overflow); // preemption bound 1
}

/// Cores 0 and 1 queue a callback each at once, both usually for the same grace period: one
/// requester takes GP_LOCK and starts it; the other may find REQUESTED already covering it and
/// return without the lock (`request`'s fast path), or request the next one while the first is
/// in progress (its completion must start that one). Each core then drives grace periods as its
/// idle loop would until its own callback has run: a request the fast path lost would leave a
/// callback waiting for a grace period nobody starts, and the loop would not end (loom stops it
/// at its branch limit and fails the model).
#[test]
fn concurrent_grace_period_requests_each_complete() {
    check(2, || requests(1, 1)); // preemption bound 2
}

// ---------------------------------------------------------------------------------------------
// Progress, and paths the models above do not reach (from a review as RCU maintainers would do
// it): a request that finds its grace period already requested behind one in progress
// (`request`'s fast path), an idle core that passed a quiescent point before sleeping with a
// callback (barrier E is needed), the callback ring after it has wrapped, and D' with the pass
// on a third core.
// ---------------------------------------------------------------------------------------------

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
    let (mut ctx, _s) = boot();
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

/// `concurrent_grace_period_requests_each_complete` has each core request once:
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

/// As `idle_core_with_callbacks`, but core 1 passes a quiescent point between its
/// `call_rcu` and its sleep (as the idle loop does after every work item). Its own bit is then
/// cleared before it publishes `wake_for_gp`, so the leaf lock no longer carries that store to
/// the completer: only E (and the second barrier of `eqs_enter`) make one of the two see the
/// other.
fn idle_core_after_qs_with_callbacks() {
    let (mut ctx, _s) = boot();
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

/// Core 1 reads, sleeps (idle_enter/idle_exit), reads; core 2 pushes the grace period along
/// with gp_try_complete (the tree's force_pass, from a core that did not start it); core 0
/// replaces, synchronize_rcu, retires.
fn third_core_force_pass() {
    let (mut ctx, s) = boot();
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

/// `callback_ring_overflow` explores one execution and never pushes after the
/// ring has wrapped (`first` is 0 at every push). Here three segments run first (`first` = 3),
/// then six objects for six grace periods fill slots 3, 0, 1, 2 and overflow into slot 2 twice,
/// the last one with core 1 holding its grace period open.
fn callback_ring_wraps_then_overflows() {
    let (mut ctx, _s) = boot();
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

// ---------------------------------------------------------------------------------------------
// A failure inside a blocking wait.
// ---------------------------------------------------------------------------------------------

/// A wake-up that never comes leaves a waiter in `wait_event` asleep, which loom reports as a
/// deadlock: a panic raised inside RCU's blocking wait (`wait_quiescent_inner`), with no thread
/// of the execution active any more. It must reach the model's runner as a failure (what a
/// negative control expecting a missed wake-up counts on), not abort the process: nothing in
/// the wait may touch loom's state while that panic unwinds.
#[test]
fn a_deadlock_inside_a_blocking_wait_fails_the_model() {
    let r = std::panic::catch_unwind(|| {
        check(0, || {
            let (mut ctx, _s) = boot();
            machine::wait_event(&mut ctx, || false); // nobody wakes it
        })
    });
    assert!(r.is_err(), "loom reports the waiter that nobody wakes");
}
