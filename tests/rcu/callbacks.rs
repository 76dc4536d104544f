//! Callbacks: `call_rcu` and the intrusive forms (`kfree_rcu`, `RcuCell`'s `Retired`, `RcuList`'s
//! `Removed`) run once, in order, after their grace period; `rcu_barrier` waits for them from any
//! core; retiring allocates nothing.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;
use quiescent::{smp, test};

/// Per core, each callback run: (its index, the grace period it needs, grace periods completed when it ran).
type CallbackLog = Arc<Vec<spin::Mutex<Vec<(usize, u64, u64)>>>>;

pub(super) fn call_rcu_runs_after_a_grace_period_once_in_order(ctx: &mut Ctx) {
    const N: usize = 200;
    let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
    let l2 = log.clone();
    test::on_all_cores(ctx, move |cpu, _| {
        for i in 0..N {
            let snap = rcu::stats::started() + 1;
            let l = l2.clone();
            rcu::call_rcu(move |_| l[cpu].lock().push((i, snap, rcu::stats::completed())));
        }
        // A callback that allocates and queues another one, twice.
        let l = l2.clone();
        rcu::call_rcu(move |_| {
            let l3 = l.clone();
            rcu::call_rcu(move |_| {
                let l4 = l3.clone();
                rcu::call_rcu(move |_| l4[cpu].lock().push((usize::MAX, 0, 0)));
            });
        });
    });
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
    for cpu in smp::online_cpus() {
        let l = log[cpu].lock();
        assert_eq!(l.len(), N + 1, "core {}: {} callbacks ran", cpu, l.len());
        for (k, &(i, snap, done)) in l.iter().take(N).enumerate() {
            assert_eq!(i, k, "core {}: callbacks out of order", cpu);
            assert!(done >= snap, "core {}: callback {} ran before its grace period ({} < {})", cpu, i, done, snap);
        }
        assert_eq!(l[N].0, usize::MAX, "core {}: the chained callbacks did not all run", cpu);
    }
}

pub(super) fn rcu_barrier_waits_for_every_queued_callback(ctx: &mut Ctx) {
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    test::on_all_cores(ctx, move |_, _| {
        for _ in 0..50 {
            let r = r2.clone();
            rcu::call_rcu(move |_| {
                r.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    rcu::rcu_barrier(ctx);
    assert_eq!(ran.load(Ordering::Relaxed), 50 * smp::num_online());
    let (queued, invoked) = rcu::stats::callback_counts();
    assert_eq!(queued, invoked, "rcu_barrier returned with callbacks outstanding");
}

/// Review hazard 3: rcu_barrier works from every core (it used to need core 0's work queue),
/// while core 0 itself is blocked waiting for the caller: core 0's own callbacks, the marker
/// among them, run inside its wait.
pub(super) fn rcu_barrier_works_from_every_core(ctx: &mut Ctx) {
    for caller in smp::online_cpus() {
        let ran = Arc::new(AtomicUsize::new(0));
        let r2 = ran.clone();
        test::on_all_cores(ctx, move |_, _| {
            for _ in 0..20 {
                let r = r2.clone();
                rcu::call_rcu(move |_| {
                    r.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        smp::call_on(ctx, caller, rcu::rcu_barrier);
        assert_eq!(
            ran.load(Ordering::Relaxed),
            20 * smp::num_online(),
            "rcu_barrier on core {} returned early",
            caller
        );
    }
}

/// An object retired on core `cpu` as number `idx` when `snap` was the grace period it needed:
/// its drop logs `(idx, snap, grace periods completed)` on its core and counts itself.
struct Tracked {
    cpu: usize,
    idx: usize,
    snap: u64,
    log: CallbackLog,
    drops: Arc<Vec<AtomicUsize>>,
    head: rcu::RcuHead,
}

// SAFETY: HEAD_OFFSET is the offset of `head`, an RcuHead nothing else uses.
unsafe impl rcu::RcuHeaded for Tracked {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Tracked, head);
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log[self.cpu].lock().push((self.idx, self.snap, rcu::stats::completed()));
        self.drops[self.cpu * RETIRES + self.idx].fetch_add(1, Ordering::Relaxed);
    }
}

const RETIRES: usize = 240;

/// Every kind of callback, interleaved on every core: `kfree_rcu` of a box with an `RcuHead`,
/// an `RcuCell`'s `Retired`, an `RcuList`'s `Removed` (the three intrusive forms) and a
/// `call_rcu` closure. Each object is freed exactly once, not before the grace period it needed,
/// in queue order per core, and one `rcu_barrier` waits for all of them.
pub(super) fn intrusive_and_closure_callbacks_free_once_in_order_after_a_grace_period(ctx: &mut Ctx) {
    use quiescent::rcu::cell::RcuCell;
    let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
    let drops: Arc<Vec<AtomicUsize>> =
        Arc::new((0..quiescent::MAX_CPUS * RETIRES).map(|_| AtomicUsize::new(0)).collect());
    let (l2, d2) = (log.clone(), drops.clone());
    test::on_all_cores(ctx, move |cpu, ctx| {
        let cell: RcuCell<Tracked> = RcuCell::new();
        let list: RcuList<Tracked> = RcuList::new();
        for idx in 0..RETIRES {
            let snap = rcu::stats::started() + 1;
            let t = Tracked { cpu, idx, snap, log: l2.clone(), drops: d2.clone(), head: rcu::RcuHead::new() };
            match idx % 4 {
                0 => rcu::kfree_rcu(Box::new(t)),
                1 => {
                    drop(cell.replace(t)); // empty before: nothing retired yet
                    let r = cell.take().expect("the object just published");
                    assert_eq!((r.cpu, r.idx), (cpu, idx));
                    // Retire under a reader of this core: the object must outlive the section.
                    let g = rcu::read(ctx);
                    assert!(cell.read(&g).is_none());
                    drop(r);
                    assert_eq!(d2[cpu * RETIRES + idx].load(Ordering::Relaxed), 0, "Retired freed at once");
                    drop(g);
                }
                2 => {
                    list.add_head(t);
                    let r = list.remove(|t| t.idx == idx).expect("the node just added");
                    drop(r);
                    assert_eq!(d2[cpu * RETIRES + idx].load(Ordering::Relaxed), 0, "Removed freed at once");
                }
                _ => rcu::call_rcu(move |_| drop(t)),
            }
            if idx % 61 == 0 {
                rcu::rcu_quiescent_state(ctx); // lets earlier grace periods end (and callbacks run) mid-way
            }
        }
    });
    rcu::rcu_barrier(ctx);
    for cpu in smp::online_cpus() {
        let l = log[cpu].lock();
        assert_eq!(l.len(), RETIRES, "core {}: {} objects freed after rcu_barrier", cpu, l.len());
        for (k, &(idx, snap, done)) in l.iter().enumerate() {
            assert_eq!(idx, k, "core {}: callbacks out of queue order", cpu);
            assert!(done >= snap, "core {}: object {} freed before its grace period ({} < {})", cpu, idx, done, snap);
        }
        for idx in 0..RETIRES {
            let n = drops[cpu * RETIRES + idx].load(Ordering::Relaxed);
            assert_eq!(n, 1, "core {}: object {} freed {} times", cpu, idx, n);
        }
    }
}

/// `rcu_barrier` waits for intrusive callbacks (no closure queued anywhere but its markers).
pub(super) fn rcu_barrier_waits_for_intrusive_callbacks(ctx: &mut Ctx) {
    let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
    let drops: Arc<Vec<AtomicUsize>> =
        Arc::new((0..quiescent::MAX_CPUS * RETIRES).map(|_| AtomicUsize::new(0)).collect());
    let (l2, d2) = (log.clone(), drops.clone());
    test::on_all_cores(ctx, move |cpu, _| {
        for idx in 0..50 {
            let snap = rcu::stats::started() + 1;
            rcu::kfree_rcu(Box::new(Tracked {
                cpu,
                idx,
                snap,
                log: l2.clone(),
                drops: d2.clone(),
                head: rcu::RcuHead::new(),
            }));
        }
    });
    rcu::rcu_barrier(ctx);
    let freed: usize = drops.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    assert_eq!(freed, 50 * smp::num_online(), "rcu_barrier returned before every kfree_rcu ran");
    let (queued, invoked) = rcu::stats::callback_counts();
    assert_eq!(queued, invoked, "rcu_barrier returned with callbacks outstanding");
}

/// Retiring through `RcuCell`, `RcuList` and `kfree_rcu` allocates nothing (the heap's
/// allocation count does not move), and the closure form allocates one box per call. Measured
/// on this core while the others idle.
pub(super) fn retiring_allocates_nothing(ctx: &mut Ctx) {
    use quiescent::heap::allocations;
    use quiescent::rcu::cell::RcuCell;
    const N: usize = 200;
    rcu::rcu_barrier(ctx);
    let cell: RcuCell<u64> = RcuCell::new();
    let mut retired = Vec::with_capacity(N);
    for i in 0..N as u64 {
        if let Some(r) = cell.replace(i) {
            retired.push(r);
        }
    }
    let list: RcuList<u64> = RcuList::new();
    for i in 0..N as u64 {
        list.add_head(i);
    }
    let mut removed = Vec::with_capacity(N);
    for i in 0..N as u64 {
        removed.push(list.remove(|&v| v == i).expect("added above"));
    }
    let boxes: Vec<Box<Tracked>> = {
        let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
        let drops: Arc<Vec<AtomicUsize>> =
            Arc::new((0..quiescent::MAX_CPUS * RETIRES).map(|_| AtomicUsize::new(0)).collect());
        (0..N)
            .map(|idx| {
                Box::new(Tracked {
                    cpu: 0,
                    idx: idx % RETIRES,
                    snap: 0,
                    log: log.clone(),
                    drops: drops.clone(),
                    head: rcu::RcuHead::new(),
                })
            })
            .collect()
    };
    let a0 = allocations();
    while let Some(r) = retired.pop() {
        drop(r);
    }
    let a1 = allocations();
    while let Some(r) = removed.pop() {
        drop(r);
    }
    let a2 = allocations();
    for b in boxes {
        rcu::kfree_rcu(b);
    }
    let a3 = allocations();
    for _ in 0..N {
        rcu::call_rcu(|_| ());
    }
    let a4 = allocations();
    assert_eq!(a1 - a0, 0, "dropping {} Retired allocated", N - 1);
    assert_eq!(a2 - a1, 0, "dropping {} Removed allocated", N);
    assert_eq!(a3 - a2, 0, "{} kfree_rcu allocated", N);
    assert_eq!(a4 - a3, N as u64, "the closure form allocates one box per call");
    rcu::rcu_barrier(ctx);
}
