//! Reader-writer semaphores: the same suite for percpu-rwsem and the classic rw_semaphore
//! (plus rcu_sync and the percpu-rwsem specifics).
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use quiescent::smp::{self, Ctx};
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rwsem::RwSem;
use quiescent::sync::{rcu_sync, RwSemaphore};
use quiescent::test::{others, wait_until};
use quiescent::{arch, rcu, test};

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

fn exclusion<L: RwSemaphore + 'static>(ctx: &mut Ctx, l: L) {
    let l = Arc::new(l);
    let ck = Arc::new(Checker(AtomicU64::new(0)));
    let writes = Arc::new(AtomicU64::new(0));
    let (l2, c2, w2) = (l.clone(), ck.clone(), writes.clone());
    // 400 operations per core up to 8 cores, 16 past 8: there vCPUs outnumber the host's cores,
    // and every write waits for each reader's vCPU to get a host core (at 64 cores on a loaded
    // 2-core host, 50 per core took from 15 s to over 3 minutes).
    let ops = if smp::num_online() > 8 { 16 } else { 400 };
    test::on_all_cores(ctx, move |cpu, ctx| {
        let mut x = 0x2545_f491_4f6c_dd1d ^ (cpu as u64 + 1);
        for i in 0..ops {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(8) {
                let w = l2.write(ctx);
                c2.write_enter();
                for _ in 0..50 {
                    core::hint::spin_loop();
                }
                c2.write_exit();
                w2.fetch_add(1, Ordering::Relaxed);
                drop(w);
            } else {
                let g = l2.read(ctx);
                c2.read_enter();
                for _ in 0..50 {
                    core::hint::spin_loop();
                }
                c2.read_exit();
                g.unlock(ctx);
            }
            if i % 16 == 0 {
                rcu::rcu_quiescent_state(ctx);
            }
        }
    });
    assert!(writes.load(Ordering::Relaxed) > 0);
    assert!(!l.is_read_locked() && !l.is_write_locked(), "{} left locked", l.name());
}

fn readers_share<L: RwSemaphore + 'static>(ctx: &mut Ctx, l: L) {
    let n = smp::num_online();
    let l = Arc::new(l);
    let inside = Arc::new(AtomicUsize::new(0));
    let (l2, i2) = (l.clone(), inside.clone());
    test::on_all_cores(ctx, move |_, ctx| {
        let g = l2.read(ctx);
        i2.fetch_add(1, Ordering::AcqRel);
        // Every core is inside at once.
        let t0 = arch::counter();
        while i2.load(Ordering::Acquire) < n {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "readers did not all get in together");
            core::hint::spin_loop();
        }
        g.unlock(ctx);
    });
}

fn writer_waits_for_readers_inside_only<L: RwSemaphore + 'static>(ctx: &mut Ctx, l: L) {
    let o = others();
    if o.len() < 2 {
        return;
    }
    let (rc, wc) = (o[0], o[1]);
    let l = Arc::new(l);
    let (reading, release, written) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (l2, r2, rel2) = (l.clone(), reading.clone(), release.clone());
    smp::queue_work(rc, move |ctx| {
        let g = l2.read(ctx);
        r2.store(true, Ordering::Release);
        while !rel2.load(Ordering::Acquire) {
            // A long hold passes quiescent points (QSBR's contract for long-running code).
            rcu::rcu_quiescent_state(ctx);
        }
        g.unlock(ctx);
    });
    wait_until(ctx, 5000, "the reader inside", || reading.load(Ordering::Acquire));
    let (l3, w3) = (l.clone(), written.clone());
    smp::queue_work(wc, move |ctx| {
        let _w = l3.write(ctx);
        w3.store(true, Ordering::Release);
    });
    // The writer is blocked by the reader inside; once it waits, trylock fails for new readers.
    // Polled as a reader, passing a quiescent point between tries: a trylock inside a quiescent
    // wait's condition would run while RCU is not watching, unprotected by the writer's grace
    // period (debug builds name that).
    let t0 = arch::counter();
    while l.try_read(ctx).map(|g| g.unlock(ctx)).is_some() {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "the writer to start waiting within 5000 ms");
        rcu::rcu_quiescent_state(ctx);
    }
    assert!(!written.load(Ordering::Acquire), "the writer got in past a reader");
    release.store(true, Ordering::Release);
    wait_until(ctx, 5000, "the writer after the reader left", || written.load(Ordering::Acquire));
    assert!(l.try_read(ctx).map(|g| g.unlock(ctx)).is_some(), "trylock fails with no writer");
}

fn trylock_fails_only_while_a_writer_holds<L: RwSemaphore + 'static>(ctx: &mut Ctx, l: L) {
    let l = Arc::new(l);
    let g1 = l.try_read(ctx).expect("read trylock with no writer");
    let g2 = l.try_read(ctx).expect("a second read trylock");
    g1.unlock(ctx);
    g2.unlock(ctx);
    let w = l.write(ctx);
    l.assert_write_held();
    assert!(l.is_write_locked());
    for &c in &others() {
        let l2 = l.clone();
        let got = smp::call_on(ctx, c, move |ctx| l2.try_read(ctx).map(|g| g.unlock(ctx)).is_some());
        assert!(!got, "core {} got a read lock past the writer", c);
    }
    drop(w);
    for &c in &others() {
        let l2 = l.clone();
        assert!(smp::call_on(ctx, c, move |ctx| l2.try_read(ctx).map(|g| g.unlock(ctx)).is_some()));
    }
}

fn no_writer_starvation<L: RwSemaphore + 'static>(ctx: &mut Ctx, l: L) {
    let o = others();
    if o.is_empty() {
        return;
    }
    let l = Arc::new(l);
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicUsize::new(0));
    for &c in &o {
        let (l2, s2, r2) = (l.clone(), stop.clone(), running.clone());
        smp::queue_work(c, move |ctx| {
            r2.fetch_add(1, Ordering::Release);
            let mut i = 0u64;
            while !s2.load(Ordering::Acquire) {
                let g = l2.read(ctx);
                for _ in 0..20 {
                    core::hint::spin_loop();
                }
                g.unlock(ctx);
                i += 1;
                if i.is_multiple_of(32) {
                    rcu::rcu_quiescent_state(ctx);
                }
            }
            r2.fetch_sub(1, Ordering::Release);
        });
    }
    wait_until(ctx, 5000, "the readers starting", || running.load(Ordering::Acquire) == o.len());
    // The writer gets in within a bound despite a continuous stream of readers: 2 s up to 8
    // cores, 2 s per 8 beyond (with more vCPUs than host cores a reader inside the lock may
    // wait for its host core behind all the others).
    let bound_ms = 2000 * (smp::num_online().max(8) / 8) as u64;
    for _ in 0..5 {
        let t0 = arch::counter();
        let w = l.write(ctx);
        let ns = arch::ticks_to_ns(arch::counter() - t0);
        drop(w);
        assert!(
            ns < bound_ms * 1_000_000,
            "{}: the writer waited {} ms behind readers (bound {} ms)",
            l.name(),
            ns / 1_000_000,
            bound_ms
        );
    }
    stop.store(true, Ordering::Release);
    wait_until(ctx, 5000, "the readers stopping", || running.load(Ordering::Acquire) == 0);
}

fn readers_behind_a_writer_are_admitted_together<L: RwSemaphore + 'static>(ctx: &mut Ctx, l: L) {
    let o = others();
    if o.is_empty() {
        return;
    }
    let l = Arc::new(l);
    let w = l.write(ctx);
    let (queued, inside, done) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let n = o.len();
    for &c in &o {
        let (l2, q2, i2, d2) = (l.clone(), queued.clone(), inside.clone(), done.clone());
        smp::queue_work(c, move |ctx| {
            q2.fetch_add(1, Ordering::AcqRel);
            let g = l2.read(ctx);
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
            g.unlock(ctx);
            d2.fetch_add(1, Ordering::AcqRel);
        });
    }
    wait_until(ctx, 5000, "the readers queueing", || queued.load(Ordering::Acquire) == n);
    // Give them time to block; none may get in while the writer holds.
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || arch::ticks_to_ns(arch::counter() - t0) < 50_000_000);
    assert_eq!(inside.load(Ordering::Acquire), 0, "a reader got in past the writer");
    drop(w);
    wait_until(ctx, 5000, "the readers finishing", || done.load(Ordering::Acquire) == n);
}

fn waiting_counts_as_quiescent<L: RwSemaphore + 'static>(ctx: &mut Ctx, l: L) {
    // A writer holds the lock and calls synchronize_rcu while a reader on another core waits
    // for that writer: the reader's wait must count as a quiescent state, or both wait forever.
    let o = others();
    if o.is_empty() {
        return;
    }
    let l = Arc::new(l);
    let w = l.write(ctx);
    let (queued, got) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (l2, q2, g2) = (l.clone(), queued.clone(), got.clone());
    smp::queue_work(o[0], move |ctx| {
        q2.store(true, Ordering::Release);
        let g = l2.read(ctx);
        g2.store(true, Ordering::Release);
        g.unlock(ctx);
    });
    wait_until(ctx, 5000, "the reader queueing", || queued.load(Ordering::Acquire));
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || arch::ticks_to_ns(arch::counter() - t0) < 20_000_000);
    rcu::synchronize_rcu(ctx); // the test is that this returns (the runner's timeout catches a hang)
    drop(w);
    wait_until(ctx, 5000, "the reader after the writer", || got.load(Ordering::Acquire));
}

fn classic_exclusion(ctx: &mut Ctx) {
    exclusion(ctx, classic())
}
fn classic_readers_share(ctx: &mut Ctx) {
    readers_share(ctx, classic())
}
fn classic_writer_waits_for_readers_inside(ctx: &mut Ctx) {
    writer_waits_for_readers_inside_only(ctx, classic())
}
fn classic_trylock(ctx: &mut Ctx) {
    trylock_fails_only_while_a_writer_holds(ctx, classic())
}
fn classic_no_writer_starvation(ctx: &mut Ctx) {
    no_writer_starvation(ctx, classic())
}
fn classic_queued_readers_admitted_together(ctx: &mut Ctx) {
    readers_behind_a_writer_are_admitted_together(ctx, classic())
}
fn classic_waiting_is_quiescent(ctx: &mut Ctx) {
    waiting_counts_as_quiescent(ctx, classic())
}

fn percpu_exclusion(ctx: &mut Ctx) {
    exclusion(ctx, percpu())
}
fn percpu_readers_share(ctx: &mut Ctx) {
    readers_share(ctx, percpu())
}
fn percpu_writer_waits_for_readers_inside(ctx: &mut Ctx) {
    writer_waits_for_readers_inside_only(ctx, percpu())
}
fn percpu_trylock(ctx: &mut Ctx) {
    trylock_fails_only_while_a_writer_holds(ctx, percpu())
}
fn percpu_no_writer_starvation(ctx: &mut Ctx) {
    no_writer_starvation(ctx, percpu())
}
fn percpu_queued_readers_admitted_together(ctx: &mut Ctx) {
    readers_behind_a_writer_are_admitted_together(ctx, percpu())
}
fn percpu_waiting_is_quiescent(ctx: &mut Ctx) {
    waiting_counts_as_quiescent(ctx, percpu())
}

fn percpu_back_to_back_writers_pay_one_grace_period(ctx: &mut Ctx) {
    let l = percpu();
    let before = rcu_sync::gp_waits();
    drop(l.write(ctx));
    drop(l.write(ctx)); // within the exit grace period: no wait
    assert_eq!(rcu_sync::gp_waits() - before, 1, "back-to-back writers waited for more than one grace period");
    // The exit callbacks (one grace period, replayed once for the second writer) return the
    // rcu_sync to idle. (rcu_barrier blocks: it cannot run inside a wait_until condition.)
    let t0 = arch::counter();
    loop {
        rcu::rcu_barrier(ctx);
        if l.readers_fast() {
            break;
        }
        assert!(
            arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000,
            "the rcu_sync to go idle did not happen within 5000 ms"
        );
    }
    let before = rcu_sync::gp_waits();
    drop(l.write(ctx)); // idle again: one grace period
    assert_eq!(rcu_sync::gp_waits() - before, 1);
    rcu::rcu_barrier(ctx);
}

fn percpu_is_read_locked_tracks_readers_on_every_core(ctx: &mut Ctx) {
    // Fast-path readers on every core (each counting on its own core) are all seen.
    let l = Arc::new(percpu());
    assert!(l.readers_fast(), "a new percpu-rwsem starts on the fast path");
    let l2 = l.clone();
    let held = test::on_all_cores(ctx, move |_, ctx| {
        let g = l2.read(ctx);
        let r = l2.is_read_locked();
        g.unlock(ctx);
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
fn percpu_writer_waits_for_fast_path_readers_leaving_on_the_slow_path(ctx: &mut Ctx) {
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
    let mine = l.read(ctx); // the fast path: no writer yet
    for (k, &c) in readers.iter().enumerate() {
        let (l2, h2, t2, r2, w2) = (l.clone(), held.clone(), turn.clone(), released.clone(), written.clone());
        smp::queue_work(c, move |ctx| {
            assert!(l2.readers_fast(), "core {}: no writer yet, the fast path", c);
            let g = l2.read(ctx);
            h2.fetch_add(1, Ordering::AcqRel);
            while t2.load(Ordering::Acquire) <= k {
                rcu::rcu_quiescent_state(ctx); // a long hold passes quiescent points
            }
            assert!(!w2.load(Ordering::Acquire), "the writer entered while core {} held the lock", c);
            assert!(!l2.readers_fast(), "a writer is inside: the slow path");
            g.unlock(ctx);
            r2.fetch_add(1, Ordering::AcqRel);
        });
    }
    wait_until(ctx, 10_000, "every reader inside", || held.load(Ordering::Acquire) == n - 1);
    let walks = Arc::new(AtomicUsize::new(usize::MAX));
    let (l3, r3, w3, wk3) = (l.clone(), released.clone(), written.clone(), walks.clone());
    smp::queue_work(o[0], move |ctx| {
        let before = l3.debug_walks();
        let w = l3.write(ctx);
        let after = l3.debug_walks();
        let left = r3.load(Ordering::Acquire);
        assert_eq!(left, n - 1, "the writer entered with {} of the other cores' readers still inside", n - 1 - left);
        if let (Some(b), Some(a)) = (before, after) {
            wk3.store(a - b, Ordering::Relaxed);
        }
        w3.store(true, Ordering::Release);
        drop(w);
    });
    // Once the writer has passed its grace period and taken `block`, trylock fails.
    let t0 = arch::counter();
    while l.try_read(ctx).map(|g| g.unlock(ctx)).is_some() {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 10_000_000_000, "the writer to start waiting within 10 s");
        rcu::rcu_quiescent_state(ctx);
    }
    for k in 0..n - 1 {
        turn.store(k + 1, Ordering::Release);
        wait_until(ctx, 10_000, "a reader to leave", || released.load(Ordering::Acquire) == k + 1);
        assert!(l.try_read(ctx).map(|g| g.unlock(ctx)).is_none(), "the writer still waits: trylock fails");
        assert!(!written.load(Ordering::Acquire), "the writer entered with readers inside");
    }
    assert!(!l.readers_fast());
    mine.unlock(ctx); // the last one out, on the slow path: it wakes the writer
    wait_until(ctx, 10_000, "the writer after the last reader left", || written.load(Ordering::Acquire));
    wait_until(ctx, 10_000, "the writer's up_write", || !l.is_write_locked());
    if cfg!(debug_assertions) {
        assert_eq!(walks.load(Ordering::Relaxed), 1, "down_write walked the per-core counts more than once");
    }
    assert!(!l.is_read_locked());
    rcu::rcu_barrier(ctx);
}

/// A read guard dropped (not `unlock`ed) has no proof that RCU watches this core: it may be
/// dropped anywhere, here inside a blocking wait's condition, where the core is in an extended
/// quiescent state and a writer's grace period would not wait for a fast-path decrement. So the
/// drop releases on the slow path (the shared count, after a barrier): the hold taken on the fast
/// path (this core's count) and the slow path's release still add up to zero, and a writer on
/// another core gets in. Before, the drop took the fast path there (debug builds named it:
/// "percpu_up_read while RCU is not watching"). Debug builds also check that the writer walked
/// the per-core counts once (and `is_read_locked` once).
fn percpu_read_guard_dropped_without_proof_releases_on_the_slow_path(ctx: &mut Ctx) {
    let l = percpu();
    assert!(l.readers_fast());
    let mut g = Some(l.read(ctx)); // the fast path: this core's count
    rcu::wait_quiescent(ctx, || {
        drop(g.take()); // RCU does not watch this core here
        false
    });
    assert!(g.is_none());
    let before = l.debug_walks();
    assert!(!l.is_read_locked(), "the dropped guard's hold is still counted");
    let writer = others().first().copied().unwrap_or(quiescent::percpu::cpu_id());
    let l2 = l.clone();
    let held = smp::call_on(ctx, writer, move |ctx| {
        let w = l2.write(ctx);
        let held = l2.is_write_locked();
        drop(w);
        held
    });
    assert!(held, "core {}: the writer did not get the lock", writer);
    assert!(!l.is_write_locked() && !l.is_read_locked());
    if let (Some(b), Some(a)) = (before, l.debug_walks()) {
        assert_eq!(a - b, 3, "walks: is_read_locked, the writer's fold, is_read_locked");
    }
    rcu::rcu_barrier(ctx);
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
    percpu_read_guard_dropped_without_proof_releases_on_the_slow_path,
    classic_exclusion,
    classic_readers_share,
    classic_writer_waits_for_readers_inside,
    classic_trylock,
    classic_no_writer_starvation,
    classic_queued_readers_admitted_together,
    classic_waiting_is_quiescent,
);
