//! percpu-rwsem and percpu_ref on the host machine: mutual exclusion under readers on every
//! core, and a ref killed under concurrent gets and puts released exactly once.

use quiescent_hosted::{boot, SetOnDrop, CORES};
use quiescent_platform::{cpu_id, host};
use quiescent_rcu as rcu;
use quiescent_sync::percpu_ref::{Flags, Misuse, PercpuRef};
use quiescent_sync::percpu_rwsem::PercpuRwSem;
use quiescent_sync::RwSemaphore;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[test]
fn percpu_rwsem_keeps_writers_and_readers_apart() {
    boot();
    let sem = PercpuRwSem::new().expect("per-cpu space for the semaphore");
    // Two words a writer changes one after the other: a reader that sees them differ ran beside
    // a writer. Relaxed: the lock alone must order them.
    let (a, b) = (AtomicU64::new(0), AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let (reads, torn) = (AtomicU64::new(0), AtomicU64::new(0));
    let writes = host::on_each_cpu(|ctx| {
        if cpu_id() == 0 {
            // The readers run until it is set.
            let _stop = SetOnDrop(&stop);
            let end = Instant::now() + Duration::from_millis(300);
            let mut n = 0;
            while Instant::now() < end {
                let w = sem.write(ctx);
                a.store(a.load(Relaxed) + 1, Relaxed);
                quiescent_platform::cpu_relax(); // widen the window
                b.store(b.load(Relaxed) + 1, Relaxed);
                drop(w);
                n += 1;
                rcu::rcu_quiescent_state(ctx);
            }
            n
        } else {
            while !stop.load(SeqCst) {
                let r = sem.read(ctx);
                let (x, y) = (a.load(Relaxed), b.load(Relaxed));
                r.unlock(ctx);
                if x != y {
                    torn.fetch_add(1, SeqCst);
                }
                reads.fetch_add(1, SeqCst);
                rcu::rcu_quiescent_state(ctx);
            }
            0
        }
    })[0];
    assert_eq!(torn.load(SeqCst), 0, "a reader saw a writer's update half done");
    assert!(writes > 5 && reads.load(SeqCst) > 100, "{} writes, {} reads", writes, reads.load(SeqCst));
    assert_eq!((a.load(SeqCst), b.load(SeqCst)), (writes, writes));
}

/// One round: a ref that core 0 kills while every core gets and puts it; returns the ref once
/// its switch to atomic mode has run, and how many times `release` ran.
fn kill_under_gets_and_puts() -> (std::sync::Arc<PercpuRef>, std::sync::Arc<AtomicU64>) {
    let released = std::sync::Arc::new(AtomicU64::new(0));
    let rel = released.clone();
    let r = PercpuRef::init(
        move |_| {
            rel.fetch_add(1, SeqCst);
        },
        Flags::NONE,
    )
    .expect("per-cpu space for the ref");
    let (gets, refused, started) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    host::on_each_cpu(|ctx| {
        // Every core in its loop before core 0 kills, so that the kill lands among the others'
        // gets and puts (a fold without a grace period then loses some).
        started.fetch_add(1, SeqCst);
        quiescent_hosted::spin_until(|| started.load(SeqCst) == CORES as u64);
        for i in 0..5_000u32 {
            if cpu_id() == 0 && i == 1_000 {
                r.kill(ctx); // drops the initial reference; tryget_live fails from here on
            }
            if r.tryget_live(ctx) {
                gets.fetch_add(1, Relaxed);
                r.put(ctx);
            } else {
                refused.fetch_add(1, Relaxed);
            }
            if i % 256 == 0 {
                rcu::rcu_quiescent_state(ctx); // lets the kill's grace period end meanwhile
            }
        }
    });
    host::on_cpu(0, rcu::rcu_barrier); // the switch to atomic mode has run
    assert!(gets.load(SeqCst) > 0 && refused.load(SeqCst) > 0);
    (r, released)
}

#[test]
fn percpu_ref_killed_under_gets_and_puts_is_released_once() {
    boot();
    // Rounds, each a new ref: a lost count shows in any of them.
    for round in 0..8 {
        let (r, released) = kill_under_gets_and_puts();
        assert!(r.is_zero(), "round {round}: count {:?} after every put", r.count());
        assert_eq!(released.load(SeqCst), 1, "round {round}: release ran {} times", released.load(SeqCst));
    }

    // Misuse is named and refused: a second kill, then a put past zero.
    let (r, released) = kill_under_gets_and_puts();
    let (warned, errors) = host::log_counts();
    host::on_cpu(1, |ctx| {
        r.kill(ctx);
        r.put(ctx);
    });
    assert_eq!(r.misuse_count(Misuse::KillTwice), 1);
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1);
    assert_eq!(host::log_counts(), (warned + 1, errors + 1), "each misuse logged once, by its level");
    assert_eq!(released.load(SeqCst), 1, "a put past zero ran release again");
}

#[test]
fn every_core_is_online_and_counts_its_own() {
    boot();
    let counter = quiescent_platform::PercpuBox::new(0u64).expect("per-cpu space");
    let ids = host::on_each_cpu(|_| {
        for _ in 0..1000 {
            counter.this_cpu_inc();
        }
        (cpu_id(), counter.get())
    });
    assert_eq!(ids, (0..CORES).map(|c| (c, 1000)).collect::<Vec<_>>());
    assert_eq!(quiescent_platform::num_online(), CORES);
    assert_eq!(counter.sum(quiescent_platform::online_cpus()), 1000 * CORES as u64);
}
