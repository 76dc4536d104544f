//! A stand-in for the firmware's RCU, which the `sync` files call (`synchronize_rcu`,
//! `call_rcu`, the debug checks). It is an idealised QSBR, not a copy of `src/rcu/`: every
//! state change and every check is an AcqRel read-modify-write of one word (`seq`), so all of
//! them are totally ordered and each happens after the ones before it: correct by construction,
//! and the models of `sync` check `sync`'s own barriers, not RCU's. (Not SeqCst fences: loom
//! makes each SeqCst fence synchronise with every earlier one in the order it happens to run
//! them, and does not explore other orders of fences, so fences here would order the models'
//! threads more than the hardware does.) Modelling `src/rcu/` itself needs the
//! firmware's `rcu/` routed through the seam as `sync` is (see the README's loom section).
//!
//! Per core: a count of quiescent points and an "in an extended quiescent state" flag (a core
//! that waits, or has no thread). A grace period ends once every other core has passed a
//! quiescent point or been in an extended quiescent state after it began.
use crate::machine::{self, cpu_id, AtomicBool, AtomicU32, Mutex, Ordering, NR_CPUS};

struct State {
    /// The one word every RCU event goes through.
    seq: AtomicU32,
    qs: Vec<AtomicU32>,
    eqs: Vec<AtomicBool>,
    callbacks: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
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
pub fn eqs_enter() {
    set_eqs(true);
}

/// This core leaves its extended quiescent state.
pub fn eqs_exit() {
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
        eqs_enter();
        true
    },
    idle_needs_tick: || false,
    idle_exit: eqs_exit,
    blocking_wait: |cond| {
        eqs_enter();
        while cond() {
            loom::thread::yield_now();
        }
        eqs_exit();
    },
    might_block: || {},
    cpu_online: eqs_exit,
    cpu_dead,
};

/// Registers the stand-in with the model's machine (at the start of each model).
pub fn init() {
    machine::set_idle_hooks(&HOOKS);
}

/// A quiescent point: the end of this core's implicit read-side section.
pub fn quiescent_point() {
    event();
    RCU.qs[cpu_id()].fetch_add(1, Ordering::Relaxed);
    event();
}

/// Waits for a grace period (as an extended quiescent state, like the firmware's), unless a
/// negative control names this call (`machine::omit_grace_period`: rcu_sync's G).
#[track_caller]
pub fn synchronize_rcu() {
    if machine::grace_period_omitted(core::panic::Location::caller()) {
        return;
    }
    eqs_enter();
    wait_for_readers();
    eqs_exit();
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
pub fn call_rcu(f: impl FnOnce() + Send + 'static) {
    if machine::grace_period_omitted(core::panic::Location::caller()) {
        NO_GP.callbacks.lock().push(Box::new(f));
        return;
    }
    RCU.callbacks.lock().push(Box::new(f));
}

/// Waits for a grace period and runs the queued callbacks (and those they queue).
pub fn barrier() {
    loop {
        run_without_gp();
        let cbs = core::mem::take(&mut *RCU.callbacks.lock());
        if cbs.is_empty() {
            return;
        }
        synchronize_rcu();
        for f in cbs {
            f();
        }
    }
}

/// Debug check of the firmware (a no-op in the model).
pub fn assert_watching(_what: &str) {}

/// Debug check of the firmware (a no-op in the model).
pub fn might_block(_what: &str) {}

// ---------------------------------------------------------------------------------------------
// What percpu_ref needs beyond percpu_rwsem and rcu_sync.
// ---------------------------------------------------------------------------------------------

struct NoGp {
    callbacks: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

machine::global! {
    /// Callbacks queued at a call site whose grace period a negative control left out.
    static NO_GP: NoGp = NoGp { callbacks: Mutex::new(Vec::new()) };
}

/// Runs the callbacks queued without a grace period (a negative control's); whether any ran.
fn run_without_gp() -> bool {
    let cbs = core::mem::take(&mut *NO_GP.callbacks.lock());
    let ran = !cbs.is_empty();
    for f in cbs {
        f();
    }
    ran
}

/// Read-side section markers: the firmware's count nesting in debug builds only.
pub fn rcu_read_lock() {}

/// See [`rcu_read_lock`].
pub fn rcu_read_unlock() {}

/// Whether this core runs an RCU callback: the models never wait from one.
pub fn in_callback() -> bool {
    false
}

/// Waits while `cond()`, as an extended quiescent state that runs queued callbacks meanwhile
/// (as a reader again, as the firmware's does). The stand-in's callbacks are not per core: a
/// waiter may run a callback another core queued, and loom tries both.
pub fn wait_quiescent(mut cond: impl FnMut() -> bool) {
    eqs_enter();
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
        eqs_exit();
        for f in no_gp.into_iter().chain(cbs) {
            f();
        }
        eqs_enter();
    }
    eqs_exit();
}
