//! Callbacks: `call_rcu`'s per-core segmented lists, running the ready ones, and `rcu_barrier`.

use super::gp::{request, snapshot};
use super::qs::{callbacks_while_waiting, eqs_enter, eqs_exit, might_block};
use super::{CPUS, DONE};
use crate::machine::{self, cpu_id, ipi, AtomicCtx, AtomicU64, AtomicUsize, Ctx, IrqGuard, Mutex, Ordering};
use alloc::boxed::Box;
use alloc::collections::VecDeque;

type Callback = Box<dyn FnOnce(&AtomicCtx) + Send>;

/// Callbacks waiting for one grace period (one segment of the per-core list).
struct Segment {
    gp: u64,
    cbs: VecDeque<Callback>,
}

machine::percpu_shared! {
    /// A core's callbacks, segmented by the grace period each needs, in queue order: one grace
    /// period serves a whole segment. Grace periods are non-decreasing except when an interrupt
    /// handler's `call_rcu` lands between a task's snapshot and its push (then a later segment may
    /// need an earlier grace period); segments still run in queue order, so that only delays it.
    /// Only its own core touches it, with interrupts masked: the lock, never contended, is what
    /// hands out the `&mut`.
    static CBLISTS: Mutex<VecDeque<Segment>> = Mutex::new(VecDeque::new());
}
machine::global! {
    static CBS_QUEUED: AtomicU64 = AtomicU64::new(0);
    static CBS_INVOKED: AtomicU64 = AtomicU64::new(0);
}

/// Queues `f` on this core, to run after a full grace period, from this core's idle loop (or
/// its next `rcu_quiescent_state`, or inside a blocking wait), in queue order. `f` may allocate,
/// free and call `call_rcu`; it gets an [`AtomicCtx`], so it may read under RCU but not block.
pub fn call_rcu(f: impl FnOnce(&AtomicCtx) + Send + 'static) {
    let g = snapshot();
    {
        let _irq = IrqGuard::new();
        let mut l = CBLISTS.local().lock();
        match l.back_mut() {
            Some(seg) if seg.gp == g => seg.cbs.push_back(Box::new(f)),
            _ => {
                let mut cbs: VecDeque<Callback> = VecDeque::new();
                cbs.push_back(Box::new(f));
                l.push_back(Segment { gp: g, cbs });
            }
        }
        CPUS.local().first_cb_gp.store(l.front().map_or(u64::MAX, |s| s.gp), Ordering::Relaxed);
    }
    CBS_QUEUED.fetch_add(1, Ordering::Relaxed);
    request(g);
}

/// The grace period the oldest waiting callback of this core needs, if any.
pub(super) fn first_pending_gp() -> Option<u64> {
    let g = CPUS.local().first_cb_gp.load(Ordering::Relaxed);
    (g != u64::MAX).then_some(g)
}

/// Whether this core has callbacks whose grace period has completed.
pub fn has_ready_callbacks() -> bool {
    first_pending_gp().is_some_and(|g| g <= DONE.load(Ordering::Acquire))
}

machine::percpu! {
    /// Set while this core runs callbacks: a callback that passes a quiescent point must not
    /// start running later segments (an `rcu_barrier` marker among them) ahead of its own.
    pub(super) static IN_CALLBACKS: bool = false;
}

/// Runs this core's callbacks whose grace period has completed (outside the list lock, so they
/// may queue more). Not re-entered from a callback. Called where RCU watches this core.
pub(super) fn process_callbacks() {
    if IN_CALLBACKS.get() {
        return;
    }
    if first_pending_gp().is_none_or(|g| g > DONE.load(Ordering::Acquire)) {
        return; // the common case: one load each, no lock
    }
    IN_CALLBACKS.set(true);
    run_ready_callbacks();
    IN_CALLBACKS.set(false);
}

fn run_ready_callbacks() {
    loop {
        let done = DONE.load(Ordering::Acquire);
        if first_pending_gp().is_none_or(|g| g > done) {
            return; // the common case: one load each, no lock
        }
        let seg = {
            let _irq = IrqGuard::new();
            let mut l = CBLISTS.local().lock();
            let seg = match l.front() {
                Some(s) if s.gp <= done => l.pop_front(),
                _ => None,
            };
            CPUS.local().first_cb_gp.store(l.front().map_or(u64::MAX, |s| s.gp), Ordering::Relaxed);
            seg
        };
        let Some(seg) = seg else { return };
        for cb in seg.cbs {
            // Counted before it runs: when an rcu_barrier marker runs (and its waiter returns),
            // every callback before it, on this core, is already counted.
            CBS_INVOKED.fetch_add(1, Ordering::Relaxed);
            // SAFETY: callbacks run where RCU watches this core (a quiescent point, or a
            // blocking wait that left its extended quiescent state for them), and get no
            // blocking context.
            cb(unsafe { AtomicCtx::new() });
        }
    }
}

/// Callbacks queued and invoked so far (all cores).
pub fn callback_counts() -> (u64, u64) {
    (CBS_QUEUED.load(Ordering::Relaxed), CBS_INVOKED.load(Ordering::Relaxed))
}

/// Waits until every callback queued (on any core) before the call has run (Linux's
/// `rcu_barrier`): entrains a marker callback on every online core behind its existing ones (on
/// the others from their interrupt context, with `call_function_single`, as Linux does), then
/// waits, running this core's own callbacks meanwhile. Works from any core. Not from an RCU
/// callback (its own core's marker would queue behind it) or an interrupt handler: both are
/// named errors.
pub fn rcu_barrier(ctx: &mut Ctx) {
    might_block("rcu_barrier");
    if IN_CALLBACKS.get() {
        panic!("rcu_barrier called from an RCU callback on core {} (it would wait for itself)", cpu_id());
    }
    let remaining = alloc::sync::Arc::new(AtomicUsize::new(0));
    let cpus: alloc::vec::Vec<usize> = machine::online_cpus().collect();
    remaining.store(cpus.len(), Ordering::Relaxed);
    for &c in &cpus {
        let r = remaining.clone();
        let entrain = move |_: &AtomicCtx| {
            call_rcu(move |_| {
                r.fetch_sub(1, Ordering::Release);
            })
        };
        ipi::call_function_single(ctx, c, entrain); // runs it here if `c` is this core
    }
    eqs_enter();
    while remaining.load(Ordering::Acquire) != 0 {
        callbacks_while_waiting();
        machine::cpu_relax();
    }
    eqs_exit();
}

/// Whether this core is running RCU callbacks (a callback, or code it called, is running).
pub fn in_callback() -> bool {
    IN_CALLBACKS.get()
}
