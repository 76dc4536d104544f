//! Cross-core work: the per-core queues the idle loop runs, and running a function on another
//! core or on every core.

use super::idle::SLEEPING;
use super::{ipi, is_online, num_possible, online_cpus, Completion, Ctx};
use crate::arch;
use crate::percpu::cpu_id;
use crate::MAX_CPUS;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

pub(super) type Work = Box<dyn FnOnce(&mut Ctx) + Send>;

pub(super) struct Queue {
    items: spin::Mutex<VecDeque<Work>>,
    /// Items queued, for the sleeper's lock-free check.
    pub(super) pending: AtomicUsize,
}

pub(super) static QUEUES: [Queue; MAX_CPUS] =
    [const { Queue { items: spin::Mutex::new(VecDeque::new()), pending: AtomicUsize::new(0) } }; MAX_CPUS];

/// Queues `f` to run on core `cpu`'s idle loop and wakes that core. Core 0 runs the image's
/// main function, not an idle loop: work for it would never run, so that is refused. `f` gets
/// the core's blocking context; the idle loop passes a quiescent point after it returns.
pub fn queue_work(cpu: usize, f: impl FnOnce(&mut Ctx) + Send + 'static) {
    assert!(is_online(cpu), "queue_work: core {} is not online", cpu);
    assert!(cpu != 0, "queue_work to core 0, which runs the image's main and no idle loop (from core {})", cpu_id());
    let q = &QUEUES[cpu];
    {
        let _irq = arch::IrqGuard::new();
        q.items.lock().push_back(Box::new(f));
        // Release pairs with the Acquire load in pop(), which then takes the lock anyway.
        q.pending.fetch_add(1, Ordering::Release);
    }
    // The push before reading SLEEPING; pairs with the smp_mb in idle_loop.
    arch::smp_mb();
    if SLEEPING[cpu].load(Ordering::Relaxed) && crate::drivers::gic::ready() {
        ipi::send(cpu, ipi::Ipi::Wake);
    }
}

pub(super) fn pop(cpu: usize) -> Option<Work> {
    let q = &QUEUES[cpu];
    if q.pending.load(Ordering::Acquire) == 0 {
        return None;
    }
    let _irq = arch::IrqGuard::new();
    let w = q.items.lock().pop_front();
    if w.is_some() {
        q.pending.fetch_sub(1, Ordering::Relaxed);
    }
    w
}

/// Runs `f` on core `cpu` and waits for its result (on the calling core if `cpu` is this one),
/// as a blocking wait.
pub fn call_on<R: Send + 'static>(ctx: &mut Ctx, cpu: usize, f: impl FnOnce(&mut Ctx) -> R + Send + 'static) -> R {
    if cpu == cpu_id() {
        return f(ctx);
    }
    let slot: Arc<(spin::Mutex<Option<R>>, Completion)> = Arc::new((spin::Mutex::new(None), Completion::new()));
    let s2 = slot.clone();
    queue_work(cpu, move |ctx| {
        *s2.0.lock() = Some(f(ctx));
        s2.1.complete();
    });
    slot.1.wait(ctx);
    let r = slot.0.lock().take().expect("call_on: result missing");
    r
}

/// Runs `f(cpu, ctx)` on every online core at once (this one included) and returns the results
/// in core order. Waits for all of them.
pub fn on_each_cpu<R: Send + 'static>(
    ctx: &mut Ctx,
    f: impl Fn(usize, &mut Ctx) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let me = cpu_id();
    let f = Arc::new(f);
    let n = num_possible();
    let slots: Arc<Vec<spin::Mutex<Option<R>>>> = Arc::new((0..n).map(|_| spin::Mutex::new(None)).collect());
    let cpus: Vec<usize> = online_cpus().collect();
    let done = Arc::new(Completion::expecting(cpus.len() - 1));
    for &c in cpus.iter().filter(|&&c| c != me) {
        let (f, slots, done) = (f.clone(), slots.clone(), done.clone());
        queue_work(c, move |ctx| {
            *slots[c].lock() = Some(f(c, ctx));
            done.complete();
        });
    }
    let mine = f(me, ctx);
    *slots[me].lock() = Some(mine);
    done.wait(ctx);
    cpus.iter().map(|&c| slots[c].lock().take().expect("on_each_cpu: result missing")).collect()
}
