//! The per-core idle loop: work queued from any core runs, in order; idle cores sleep and wake
//! for new work; nothing is lost in a stress of queue-and-wait.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use quiescent::arch;
use quiescent::percpu::cpu_id;
use quiescent::smp::{self, Ctx};
use quiescent::test::{others, wait_flag};

fn work_queued_from_another_core_runs(ctx: &mut Ctx) {
    let o = others();
    if o.len() < 2 {
        return;
    }
    let (from, to) = (o[0], o[1]);
    let ran_on = Arc::new(AtomicUsize::new(usize::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let (r2, d2) = (ran_on.clone(), done.clone());
    smp::call_on(ctx, from, move |_| {
        smp::queue_work(to, move |_| {
            r2.store(cpu_id(), Ordering::Relaxed);
            d2.store(true, Ordering::Release);
        })
    });
    wait_flag(ctx, &done, "work queued by another core");
    assert_eq!(ran_on.load(Ordering::Relaxed), to);
}

fn work_runs_in_queue_order(ctx: &mut Ctx) {
    for c in others() {
        let log = Arc::new(spin::Mutex::new(Vec::new()));
        for i in 0..100 {
            let l = log.clone();
            smp::queue_work(c, move |_| l.lock().push(i));
        }
        smp::call_on(ctx, c, |_| ());
        let got = log.lock().clone();
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "core {} ran its queue out of order", c);
    }
}

fn idle_core_sleeps_and_wakes_for_new_work(ctx: &mut Ctx) {
    for c in others() {
        // Wait until it sleeps in its idle loop's WFE (wake-ups counted from before that).
        smp::call_on(ctx, c, |_| ());
        let wakes = smp::wakeups(c);
        let t0 = arch::counter();
        while !smp::is_sleeping(c) {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 2_000_000_000, "core {} never went to sleep", c);
            arch::cpu_relax();
        }
        let items = smp::items_run(c);
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let t0 = arch::counter();
        smp::queue_work(c, move |_| d2.store(true, Ordering::Release));
        wait_flag(ctx, &done, "work for an idle core");
        let ns = arch::ticks_to_ns(arch::counter() - t0);
        assert!(smp::wakeups(c) > wakes, "core {} ran the work without waking from its sleep", c);
        let t1 = arch::counter();
        while smp::items_run(c) < items + 1 {
            assert!(arch::ticks_to_ns(arch::counter() - t1) < 2_000_000_000, "core {} never counted the item", c);
            arch::cpu_relax();
        }
        defmt::info!("core {} woke and ran new work in {} ns", c, ns);
    }
}

fn no_wakeup_is_lost_under_stress(ctx: &mut Ctx) {
    // Queue-and-wait thousands of times round the cores: a lost wake-up would hang here (and
    // the runner would name this case and the core).
    let o = others();
    if o.is_empty() {
        return;
    }
    let count = Arc::new(AtomicUsize::new(0));
    for i in 0..3000 {
        let c = o[i % o.len()];
        let done = Arc::new(AtomicBool::new(false));
        let (d2, n2) = (done.clone(), count.clone());
        smp::queue_work(c, move |_| {
            n2.fetch_add(1, Ordering::Relaxed);
            d2.store(true, Ordering::Release);
        });
        wait_flag(ctx, &done, "a stress work item");
    }
    assert_eq!(count.load(Ordering::Relaxed), 3000);
}

quiescent::tests!(
    work_queued_from_another_core_runs,
    work_runs_in_queue_order,
    idle_core_sleeps_and_wakes_for_new_work,
    no_wakeup_is_lost_under_stress,
);
