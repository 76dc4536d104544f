//! Reader-writer semaphores: the same suite for percpu-rwsem and the classic rw_semaphore
//! (plus rcu_sync and the percpu-rwsem specifics).
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rwsem::RwSem;
use quiescent::sync::{rcu_sync, RwSemaphore};
use quiescent::test::{others, wait_until};
use quiescent::{arch, rcu, smp, test};

fn percpu() -> Arc<PercpuRwSem> {
    PercpuRwSem::new().expect("per-cpu read counts")
}
fn classic() -> RwSem {
    RwSem::new()
}

/// Who is inside the critical section: readers count up, a writer sets bit 63.
struct Checker(AtomicU64);
const W: u64 = 1 << 63;

impl Checker {
    fn read_enter(&self) {
        let v = self.0.fetch_add(1, Ordering::AcqRel);
        assert!(v & W == 0, "a reader entered while a writer was inside");
    }
    fn read_exit(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
    fn write_enter(&self) {
        let v = self.0.swap(W, Ordering::AcqRel);
        assert!(v == 0, "a writer entered with {} readers and writer={} inside", v & !W, v & W != 0);
    }
    fn write_exit(&self) {
        assert_eq!(self.0.swap(0, Ordering::AcqRel), W, "someone entered during the write section");
    }
}

fn exclusion<L: RwSemaphore + 'static>(l: L) {
    let l = Arc::new(l);
    let ck = Arc::new(Checker(AtomicU64::new(0)));
    let writes = Arc::new(AtomicU64::new(0));
    let (l2, c2, w2) = (l.clone(), ck.clone(), writes.clone());
    // 400 operations per core up to 8 cores, 16 past 8: there vCPUs outnumber the host's cores,
    // and every write waits for each reader's vCPU to get a host core (at 64 cores on a loaded
    // 2-core host, 50 per core took from 15 s to over 3 minutes).
    let ops = if smp::num_online() > 8 { 16 } else { 400 };
    test::on_all_cores(move |cpu| {
        let mut x = 0x2545_f491_4f6c_dd1d ^ (cpu as u64 + 1);
        for i in 0..ops {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(8) {
                l2.down_write();
                c2.write_enter();
                for _ in 0..50 {
                    core::hint::spin_loop();
                }
                c2.write_exit();
                w2.fetch_add(1, Ordering::Relaxed);
                l2.up_write();
            } else {
                l2.down_read();
                c2.read_enter();
                for _ in 0..50 {
                    core::hint::spin_loop();
                }
                c2.read_exit();
                l2.up_read();
            }
            if i % 16 == 0 {
                rcu::rcu_quiescent_state();
            }
        }
    });
    assert!(writes.load(Ordering::Relaxed) > 0);
    assert!(!l.is_read_locked() && !l.is_write_locked(), "{} left locked", l.name());
}

fn readers_share<L: RwSemaphore + 'static>(l: L) {
    let n = smp::num_online();
    let l = Arc::new(l);
    let inside = Arc::new(AtomicUsize::new(0));
    let (l2, i2) = (l.clone(), inside.clone());
    test::on_all_cores(move |_| {
        l2.down_read();
        i2.fetch_add(1, Ordering::AcqRel);
        // Every core is inside at once.
        let t0 = arch::counter();
        while i2.load(Ordering::Acquire) < n {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "readers did not all get in together");
            core::hint::spin_loop();
        }
        l2.up_read();
    });
}

fn writer_waits_for_readers_inside_only<L: RwSemaphore + 'static>(l: L) {
    let o = others();
    if o.len() < 2 {
        return;
    }
    let (rc, wc) = (o[0], o[1]);
    let l = Arc::new(l);
    let (reading, release, written) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (l2, r2, rel2) = (l.clone(), reading.clone(), release.clone());
    smp::queue_work(rc, move || {
        l2.down_read();
        r2.store(true, Ordering::Release);
        while !rel2.load(Ordering::Acquire) {
            // A long hold passes quiescent points (QSBR's contract for long-running code).
            rcu::rcu_quiescent_state();
        }
        l2.up_read();
    });
    wait_until(5000, "the reader inside", || reading.load(Ordering::Acquire));
    let (l3, w3) = (l.clone(), written.clone());
    smp::queue_work(wc, move || {
        l3.down_write();
        w3.store(true, Ordering::Release);
        l3.up_write();
    });
    // The writer is blocked by the reader inside; once it waits, trylock fails for new readers.
    // Polled as a reader, passing a quiescent point between tries: a trylock inside a quiescent
    // wait's condition would run while RCU is not watching, unprotected by the writer's grace
    // period (debug builds name that).
    let t0 = arch::counter();
    while l.down_read_trylock() {
        l.up_read();
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "the writer to start waiting within 5000 ms");
        rcu::rcu_quiescent_state();
    }
    assert!(!written.load(Ordering::Acquire), "the writer got in past a reader");
    release.store(true, Ordering::Release);
    wait_until(5000, "the writer after the reader left", || written.load(Ordering::Acquire));
    assert!(l.down_read_trylock(), "trylock fails with no writer");
    l.up_read();
}

fn trylock_fails_only_while_a_writer_holds<L: RwSemaphore + 'static>(l: L) {
    assert!(l.down_read_trylock());
    assert!(l.down_read_trylock());
    l.up_read();
    l.up_read();
    l.down_write();
    l.assert_write_held();
    assert!(l.is_write_locked());
    let l = Arc::new(l);
    for &c in &others() {
        let l2 = l.clone();
        assert!(!smp::call_on(c, move || l2.down_read_trylock()), "core {} got a read lock past the writer", c);
    }
    l.up_write();
    for &c in &others() {
        let l2 = l.clone();
        assert!(smp::call_on(c, move || {
            let ok = l2.down_read_trylock();
            if ok {
                l2.up_read();
            }
            ok
        }));
    }
}

fn no_writer_starvation<L: RwSemaphore + 'static>(l: L) {
    let o = others();
    if o.is_empty() {
        return;
    }
    let l = Arc::new(l);
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicUsize::new(0));
    for &c in &o {
        let (l2, s2, r2) = (l.clone(), stop.clone(), running.clone());
        smp::queue_work(c, move || {
            r2.fetch_add(1, Ordering::Release);
            let mut i = 0u64;
            while !s2.load(Ordering::Acquire) {
                l2.down_read();
                for _ in 0..20 {
                    core::hint::spin_loop();
                }
                l2.up_read();
                i += 1;
                if i.is_multiple_of(32) {
                    rcu::rcu_quiescent_state();
                }
            }
            r2.fetch_sub(1, Ordering::Release);
        });
    }
    wait_until(5000, "the readers starting", || running.load(Ordering::Acquire) == o.len());
    // The writer gets in within a bound despite a continuous stream of readers: 2 s up to 8
    // cores, 2 s per 8 beyond (with more vCPUs than host cores a reader inside the lock may
    // wait for its host core behind all the others).
    let bound_ms = 2000 * (smp::num_online().max(8) / 8) as u64;
    for _ in 0..5 {
        let t0 = arch::counter();
        l.down_write();
        let ns = arch::ticks_to_ns(arch::counter() - t0);
        l.up_write();
        assert!(
            ns < bound_ms * 1_000_000,
            "{}: the writer waited {} ms behind readers (bound {} ms)",
            l.name(),
            ns / 1_000_000,
            bound_ms
        );
    }
    stop.store(true, Ordering::Release);
    wait_until(5000, "the readers stopping", || running.load(Ordering::Acquire) == 0);
}

fn readers_behind_a_writer_are_admitted_together<L: RwSemaphore + 'static>(l: L) {
    let o = others();
    if o.is_empty() {
        return;
    }
    let l = Arc::new(l);
    l.down_write();
    let (queued, inside, done) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let n = o.len();
    for &c in &o {
        let (l2, q2, i2, d2) = (l.clone(), queued.clone(), inside.clone(), done.clone());
        smp::queue_work(c, move || {
            q2.fetch_add(1, Ordering::AcqRel);
            l2.down_read();
            i2.fetch_add(1, Ordering::AcqRel);
            // All of them are admitted at once: wait for the others while holding the lock.
            let t0 = arch::counter();
            while i2.load(Ordering::Acquire) < n {
                assert!(
                    arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000,
                    "queued readers were not admitted together"
                );
                core::hint::spin_loop();
            }
            l2.up_read();
            d2.fetch_add(1, Ordering::AcqRel);
        });
    }
    wait_until(5000, "the readers queueing", || queued.load(Ordering::Acquire) == n);
    // Give them time to block; none may get in while the writer holds.
    let t0 = arch::counter();
    rcu::wait_quiescent(|| arch::ticks_to_ns(arch::counter() - t0) < 50_000_000);
    assert_eq!(inside.load(Ordering::Acquire), 0, "a reader got in past the writer");
    l.up_write();
    wait_until(5000, "the readers finishing", || done.load(Ordering::Acquire) == n);
}

fn waiting_counts_as_quiescent<L: RwSemaphore + 'static>(l: L) {
    // A writer holds the lock and calls synchronize_rcu while a reader on another core waits
    // for that writer: the reader's wait must count as a quiescent state, or both wait forever.
    let o = others();
    if o.is_empty() {
        return;
    }
    let l = Arc::new(l);
    l.down_write();
    let (queued, got) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (l2, q2, g2) = (l.clone(), queued.clone(), got.clone());
    smp::queue_work(o[0], move || {
        q2.store(true, Ordering::Release);
        l2.down_read();
        g2.store(true, Ordering::Release);
        l2.up_read();
    });
    wait_until(5000, "the reader queueing", || queued.load(Ordering::Acquire));
    let t0 = arch::counter();
    rcu::wait_quiescent(|| arch::ticks_to_ns(arch::counter() - t0) < 20_000_000);
    rcu::synchronize_rcu(); // the test is that this returns (the runner's timeout catches a hang)
    l.up_write();
    wait_until(5000, "the reader after the writer", || got.load(Ordering::Acquire));
}

fn classic_exclusion() {
    exclusion(classic())
}
fn classic_readers_share() {
    readers_share(classic())
}
fn classic_writer_waits_for_readers_inside() {
    writer_waits_for_readers_inside_only(classic())
}
fn classic_trylock() {
    trylock_fails_only_while_a_writer_holds(classic())
}
fn classic_no_writer_starvation() {
    no_writer_starvation(classic())
}
fn classic_queued_readers_admitted_together() {
    readers_behind_a_writer_are_admitted_together(classic())
}
fn classic_waiting_is_quiescent() {
    waiting_counts_as_quiescent(classic())
}

fn percpu_exclusion() {
    exclusion(percpu())
}
fn percpu_readers_share() {
    readers_share(percpu())
}
fn percpu_writer_waits_for_readers_inside() {
    writer_waits_for_readers_inside_only(percpu())
}
fn percpu_trylock() {
    trylock_fails_only_while_a_writer_holds(percpu())
}
fn percpu_no_writer_starvation() {
    no_writer_starvation(percpu())
}
fn percpu_queued_readers_admitted_together() {
    readers_behind_a_writer_are_admitted_together(percpu())
}
fn percpu_waiting_is_quiescent() {
    waiting_counts_as_quiescent(percpu())
}

fn percpu_back_to_back_writers_pay_one_grace_period() {
    let l = percpu();
    let before = rcu_sync::gp_waits();
    l.down_write();
    l.up_write();
    l.down_write(); // within the exit grace period: no wait
    l.up_write();
    assert_eq!(rcu_sync::gp_waits() - before, 1, "back-to-back writers waited for more than one grace period");
    // The exit callbacks (one grace period, replayed once for the second writer) return the
    // rcu_sync to idle.
    wait_until(5000, "the rcu_sync to go idle", || {
        rcu::rcu_barrier();
        l.readers_fast()
    });
    let before = rcu_sync::gp_waits();
    l.down_write(); // idle again: one grace period
    l.up_write();
    assert_eq!(rcu_sync::gp_waits() - before, 1);
    rcu::rcu_barrier();
}

fn percpu_is_read_locked_tracks_readers_on_every_core() {
    // Fast-path readers on every core (each counting on its own core) are all seen.
    let l = Arc::new(percpu());
    assert!(l.readers_fast(), "a new percpu-rwsem starts on the fast path");
    let l2 = l.clone();
    let held = test::on_all_cores(move |_| {
        l2.down_read();
        let r = l2.is_read_locked();
        l2.up_read();
        r
    });
    assert!(held.iter().all(|&h| h), "is_read_locked while held");
    assert!(!l.is_read_locked());
    assert!(!l.is_write_locked());
}

/// Readers that took the lock on the fast path on several cores (each counted in its own core's
/// count) release it one by one on the slow path while a writer waits: the writer has folded
/// their per-core counts into the shared slow count once, and must not enter before the last of
/// them has left (the test's own core, polling trylock meanwhile: failed slow-path attempts
/// add and take back counts during the wait). Debug builds also check that the writer walked the
/// per-core counts exactly once, however many wake-ups its wait had.
fn percpu_writer_waits_for_fast_path_readers_leaving_on_the_slow_path() {
    let o = others();
    if o.is_empty() {
        return;
    }
    let l = percpu();
    assert!(l.readers_fast());
    let readers: alloc::vec::Vec<usize> = o[1..].to_vec();
    let n = readers.len() + 1; // and this core
    let (held, turn, released, written) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    l.down_read(); // the fast path: no writer yet
    for (k, &c) in readers.iter().enumerate() {
        let (l2, h2, t2, r2, w2) = (l.clone(), held.clone(), turn.clone(), released.clone(), written.clone());
        smp::queue_work(c, move || {
            assert!(l2.readers_fast(), "core {}: no writer yet, the fast path", c);
            l2.down_read();
            h2.fetch_add(1, Ordering::AcqRel);
            while t2.load(Ordering::Acquire) <= k {
                rcu::rcu_quiescent_state(); // a long hold passes quiescent points
            }
            assert!(!w2.load(Ordering::Acquire), "the writer entered while core {} held the lock", c);
            assert!(!l2.readers_fast(), "a writer is inside: the slow path");
            l2.up_read();
            r2.fetch_add(1, Ordering::AcqRel);
        });
    }
    wait_until(10_000, "every reader inside", || held.load(Ordering::Acquire) == n - 1);
    let walks = Arc::new(AtomicUsize::new(usize::MAX));
    let (l3, r3, w3, wk3) = (l.clone(), released.clone(), written.clone(), walks.clone());
    smp::queue_work(o[0], move || {
        let before = l3.debug_walks();
        l3.down_write();
        let after = l3.debug_walks();
        let left = r3.load(Ordering::Acquire);
        assert_eq!(left, n - 1, "the writer entered with {} of the other cores' readers still inside", n - 1 - left);
        if let (Some(b), Some(a)) = (before, after) {
            wk3.store(a - b, Ordering::Relaxed);
        }
        w3.store(true, Ordering::Release);
        l3.up_write();
    });
    // Once the writer has passed its grace period and taken `block`, trylock fails.
    let t0 = arch::counter();
    while l.down_read_trylock() {
        l.up_read();
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 10_000_000_000, "the writer to start waiting within 10 s");
        rcu::rcu_quiescent_state();
    }
    for k in 0..n - 1 {
        turn.store(k + 1, Ordering::Release);
        wait_until(10_000, "a reader to leave", || released.load(Ordering::Acquire) == k + 1);
        assert!(!l.down_read_trylock(), "the writer still waits: trylock fails");
        assert!(!written.load(Ordering::Acquire), "the writer entered with readers inside");
    }
    assert!(!l.readers_fast());
    l.up_read(); // the last one out, on the slow path: it wakes the writer
    wait_until(10_000, "the writer after the last reader left", || written.load(Ordering::Acquire));
    wait_until(10_000, "the writer's up_write", || !l.is_write_locked());
    if cfg!(debug_assertions) {
        assert_eq!(walks.load(Ordering::Relaxed), 1, "down_write walked the per-core counts more than once");
    }
    assert!(!l.is_read_locked());
    rcu::rcu_barrier();
}

quiescent::tests!(
    percpu_exclusion,
    percpu_readers_share,
    percpu_writer_waits_for_readers_inside,
    percpu_trylock,
    percpu_no_writer_starvation,
    percpu_queued_readers_admitted_together,
    percpu_waiting_is_quiescent,
    percpu_back_to_back_writers_pay_one_grace_period,
    percpu_is_read_locked_tracks_readers_on_every_core,
    percpu_writer_waits_for_fast_path_readers_leaving_on_the_slow_path,
    classic_exclusion,
    classic_readers_share,
    classic_writer_waits_for_readers_inside,
    classic_trylock,
    classic_no_writer_starvation,
    classic_queued_readers_admitted_together,
    classic_waiting_is_quiescent,
);
