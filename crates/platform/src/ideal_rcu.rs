//! A stand-in for RCU under loom, which `quiescent-sync` calls when built with
//! `--cfg quiescent_ideal_rcu` (`synchronize_rcu`,
//! `call_rcu`, the debug checks). It is an idealised QSBR, not a copy of `crates/rcu/src/`: every
//! state change and every check is an AcqRel read-modify-write of one word (`seq`), so all of
//! them are totally ordered and each happens after the ones before it: correct by construction,
//! and the models of `sync` check `sync`'s own barriers, not RCU's. (Not SeqCst fences: loom
//! makes each SeqCst fence synchronise with every earlier one in the order it happens to run
//! them, and does not explore other orders of fences, so fences here would order the models'
//! threads more than the hardware does.) The real RCU (`quiescent-rcu`) has models of its own.
//!
//! Per core: a count of quiescent points and an "in an extended quiescent state" flag (a core
//! that waits, or has no thread). A grace period ends once every other core has passed a
//! quiescent point or been in an extended quiescent state after it began.
use crate as machine;
use crate::{cpu_id, AtomicBool, AtomicU32, Mutex, Ordering, NR_CPUS};
pub use crate::{AtomicCtx, Ctx};
use core::marker::PhantomData;
use std::boxed::Box;
use std::vec::Vec;

/// A queued callback: run with the `&AtomicCtx` of the core that runs it, as the firmware's.
type Callback = Box<dyn FnOnce(&AtomicCtx) + Send>;

/// Runs queued callbacks on this core.
///
/// # Safety
/// This core is not in an extended quiescent state (RCU watches it while they run).
unsafe fn run_callbacks(cbs: impl IntoIterator<Item = Callback>) {
    for f in cbs {
        // SAFETY: an RCU callback, run where RCU watches this core (the caller's contract); it
        // gets no `Ctx`, so it cannot pass a quiescent point.
        f(unsafe { AtomicCtx::new() });
    }
}

struct State {
    /// The one word every RCU event goes through.
    seq: AtomicU32,
    qs: Vec<AtomicU32>,
    eqs: Vec<AtomicBool>,
    callbacks: Mutex<Vec<Callback>>,
}

machine::global! {
    static RCU: State = State {
        seq: AtomicU32::new(0),
        qs: (0..NR_CPUS).map(|_| AtomicU32::new(0)).collect(),
        // Core 0 (the model's main thread) is online; the others come online in spawn_cpu.
        eqs: (0..NR_CPUS).map(|c| AtomicBool::new(c != 0)).collect(),
        callbacks: Mutex::new(Vec::new()),
    };
}

/// Orders this core's accesses before and after against every other RCU event.
fn event() {
    RCU.seq.fetch_add(1, Ordering::AcqRel);
}

fn set_eqs(v: bool) {
    event();
    RCU.eqs[cpu_id()].store(v, Ordering::Relaxed);
    event();
}

/// This core enters an extended quiescent state (a blocking wait).
///
/// # Safety
/// As the firmware's `rcu::platform::eqs_enter`: this core uses nothing read under RCU until the
/// matching [`eqs_exit`], and runs no reader meanwhile.
pub unsafe fn eqs_enter() {
    set_eqs(true);
}

/// This core leaves its extended quiescent state.
///
/// # Safety
/// Pairs with an earlier [`eqs_enter`] on this core.
pub unsafe fn eqs_exit() {
    set_eqs(false);
}

/// A core's thread ends: RCU stops waiting for it.
pub fn cpu_dead() {
    set_eqs(true);
}

/// The stand-in's hooks: a spawned core starts watching (`eqs_exit`) and stops when its thread
/// ends; a blocking wait is an extended quiescent state.
static HOOKS: machine::IdleHooks = machine::IdleHooks {
    quiescent_point,
    idle_enter: || {
        set_eqs(true);
        true
    },
    idle_needs_tick: || false,
    idle_exit: || set_eqs(false),
    // A blocking wait's condition gets no context: it reads nothing under RCU.
    blocking_wait: |cond| {
        set_eqs(true);
        while cond() {
            loom::thread::yield_now();
        }
        set_eqs(false);
    },
    might_block: || {},
    cpu_online: || set_eqs(false),
    cpu_dead,
};

/// Registers the stand-in with the model's machine (at the start of each model).
///
/// # Safety
/// As the firmware's `rcu::init`: at the start of a model, on core 0, before its other cores
/// start.
pub unsafe fn init() {
    // SAFETY: the caller's contract; these hooks are the stand-in's own.
    unsafe { machine::set_idle_hooks(&HOOKS) };
}

/// A quiescent point: the end of this core's implicit read-side section (the firmware's
/// `rcu_quiescent_state(ctx)`, and the idle loop's hook between work items).
pub fn quiescent_point(_ctx: &mut Ctx) {
    event();
    RCU.qs[cpu_id()].fetch_add(1, Ordering::Relaxed);
    event();
}

/// Waits for a grace period (as an extended quiescent state, like the firmware's), unless a
/// negative control names this call (`machine::omit_grace_period`: rcu_sync's G).
#[track_caller]
pub fn synchronize_rcu(_ctx: &mut Ctx) {
    if machine::grace_period_omitted() {
        return;
    }
    set_eqs(true);
    wait_for_readers();
    set_eqs(false);
}

/// A grace period's wait, for a core already in an extended quiescent state.
fn wait_for_readers() {
    let me = cpu_id();
    let snap: Vec<u32> = RCU.qs.iter().map(|q| q.load(Ordering::Relaxed)).collect();
    for c in (0..NR_CPUS).filter(|&c| c != me) {
        loop {
            event();
            if RCU.eqs[c].load(Ordering::Relaxed) || RCU.qs[c].load(Ordering::Relaxed) != snap[c] {
                break;
            }
            loom::thread::yield_now();
        }
    }
}

/// Queues `f` for after a grace period; [`barrier`] runs it. A call site that a negative
/// control names (`machine::omit_grace_period`, percpu_ref's G) queues it without one.
#[track_caller]
pub fn call_rcu(f: impl FnOnce(&AtomicCtx) + Send + 'static) {
    if machine::grace_period_omitted() {
        NO_GP.callbacks.lock().push(Box::new(f));
        return;
    }
    RCU.callbacks.lock().push(Box::new(f));
}

/// Waits for a grace period and runs the queued callbacks (and those they queue), on this
/// core (a blocking wait: it takes the context `&mut`).
pub fn barrier(ctx: &mut Ctx) {
    loop {
        run_without_gp(ctx);
        let cbs = core::mem::take(&mut *RCU.callbacks.lock());
        if cbs.is_empty() {
            return;
        }
        synchronize_rcu(ctx);
        // SAFETY: this core holds its `Ctx` outside any extended quiescent state: RCU watches it.
        unsafe { run_callbacks(cbs) };
    }
}

/// Debug check of the firmware (a no-op in the model).
pub fn assert_watching(_what: &str) {}

/// Whether RCU watches this core (the firmware's `rcu_is_watching`): it is not in an extended
/// quiescent state. Only this core changes its own flag.
pub fn rcu_is_watching() -> bool {
    !RCU.eqs[cpu_id()].load(Ordering::Relaxed)
}

/// Debug check of the firmware (a no-op in the model).
pub fn might_block(_what: &str) {}

// ---------------------------------------------------------------------------------------------
// What percpu_ref needs beyond percpu_rwsem and rcu_sync.
// ---------------------------------------------------------------------------------------------

struct NoGp {
    callbacks: Mutex<Vec<Callback>>,
}

machine::global! {
    /// Callbacks queued at a call site whose grace period a negative control left out.
    static NO_GP: NoGp = NoGp { callbacks: Mutex::new(Vec::new()) };
}

/// Runs the callbacks queued without a grace period (a negative control's); whether any ran.
fn run_without_gp(_ctx: &mut Ctx) -> bool {
    let cbs = core::mem::take(&mut *NO_GP.callbacks.lock());
    let ran = !cbs.is_empty();
    // SAFETY: the caller holds this core's `Ctx` outside any extended quiescent state.
    unsafe { run_callbacks(cbs) };
    ran
}

/// Read-side section markers: the firmware's count nesting in debug builds only (no-ops here).
///
/// # Safety
/// As the firmware's: pairs with one [`rcu_read_unlock`] on this core, where RCU watches it.
pub unsafe fn rcu_read_lock() {}

/// See [`rcu_read_lock`].
///
/// # Safety
/// Pairs with an earlier [`rcu_read_lock`] on this core.
pub unsafe fn rcu_read_unlock() {}

/// A read-side section for the guard's lifetime, borrowing the context (the firmware's
/// `rcu::ReadGuard`; empty, as the stand-in's sections are no-ops).
pub struct ReadGuard<'a> {
    _ctx: PhantomData<&'a AtomicCtx>,
}

impl<'a> ReadGuard<'a> {
    /// Enters a read-side section, left when the guard is dropped.
    pub fn new(ctx: &'a AtomicCtx) -> Self {
        let _ = ctx;
        // SAFETY: the borrowed context proves RCU watches this core; drop unlocks.
        unsafe { rcu_read_lock() };
        ReadGuard { _ctx: PhantomData }
    }
}

impl core::ops::Deref for ReadGuard<'_> {
    type Target = AtomicCtx;

    fn deref(&self) -> &AtomicCtx {
        // SAFETY: a read-side section is a context in which RCU watches this core and nothing
        // can block (the guard holds a shared borrow of the context).
        unsafe { AtomicCtx::new() }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: pairs with the lock in `new`.
        unsafe { rcu_read_unlock() };
    }
}

/// A read-side section for as long as the guard lives (the firmware's `rcu::read(ctx)`).
pub fn read(ctx: &AtomicCtx) -> ReadGuard<'_> {
    ReadGuard::new(ctx)
}

/// Whether this core runs an RCU callback: the models never wait from one.
pub fn in_callback() -> bool {
    false
}

/// Waits while `cond()`, as an extended quiescent state that runs queued callbacks meanwhile
/// (as a reader again, as the firmware's does). The stand-in's callbacks are not per core: a
/// waiter may run a callback another core queued, and loom tries both.
pub fn wait_quiescent(_ctx: &mut Ctx, mut cond: impl FnMut() -> bool) {
    set_eqs(true);
    while cond() {
        // Leaves the extended quiescent state only to run something: a waiter that left it on
        // every turn could keep a grace period from ever seeing it there.
        let no_gp = core::mem::take(&mut *NO_GP.callbacks.lock());
        let cbs = core::mem::take(&mut *RCU.callbacks.lock());
        if no_gp.is_empty() && cbs.is_empty() {
            loom::thread::yield_now();
            continue;
        }
        if !cbs.is_empty() {
            wait_for_readers();
        }
        set_eqs(false);
        // SAFETY: out of the extended quiescent state (just above) while they run.
        unsafe { run_callbacks(no_gp.into_iter().chain(cbs)) };
        set_eqs(true);
    }
    set_eqs(false);
}
