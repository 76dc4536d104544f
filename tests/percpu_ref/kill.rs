//! Kill and release: release once after the last put (also under concurrent get/put with a
//! kill from another core), and tryget_live once the kill is confirmed.

use super::{new_ref, settle, stamp, wait_until, Probe};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use quiescent::smp::{self, Ctx};
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::{arch, rcu, test};

pub(super) fn starts_live_in_percpu_mode_and_kill_releases_once(ctx: &mut Ctx) {
    let (r, p) = new_ref(Flags::NONE);
    assert!(r.is_percpu() && !r.is_zero() && !r.is_dying(), "a new ref is live, in percpu mode");
    assert_eq!(r.count(), None, "the count is not known in percpu mode");
    r.get(ctx);
    r.put(ctx);
    assert!(r.tryget(ctx), "tryget on a live ref");
    r.put(ctx);
    assert!(r.tryget_live(ctx), "tryget_live on a live ref");
    r.put(ctx);
    assert_eq!(r.percpu_counter(quiescent::percpu::cpu_id()), Some(0), "balanced gets and puts on this core's counter");
    r.kill(ctx);
    assert!(r.is_dying() && !r.is_percpu(), "kill makes the ref dying and atomic");
    // No quiescent point on this core since the kill, so its grace period cannot have ended.
    assert_eq!(p.releases(), 0, "release ran before the kill's grace period");
    wait_until(ctx, "release after kill", || p.releases() == 1);
    assert!(r.is_zero(), "zero after release");
    assert_eq!(r.count(), Some(0));
    settle(ctx);
    assert_eq!(p.releases(), 1, "release ran more than once");
    assert_eq!(r.misuses(), 0);
}

pub(super) fn concurrent_get_put_while_another_core_kills_releases_once_after_last_put(ctx: &mut Ctx) {
    const AFTER_CONFIRM: u32 = 300;
    let n = smp::num_online();
    let killer = smp::online_cpus().last().unwrap();
    // References the test holds (decremented before each put): release must see 0.
    let outstanding = Arc::new(AtomicI64::new(0));
    let early_releases = Arc::new(AtomicU32::new(0));
    let p = Arc::new(Probe::default());
    let (o2, e2, p2) = (outstanding.clone(), early_releases.clone(), p.clone());
    let r = PercpuRef::init(
        move |_| {
            if o2.load(Ordering::Acquire) != 0 {
                e2.fetch_add(1, Ordering::Relaxed);
            }
            p2.release_at.store(stamp(), Ordering::Relaxed);
            p2.releases.fetch_add(1, Ordering::Release);
        },
        Flags::NONE,
    )
    .expect("init");
    let ready = Arc::new(AtomicU32::new(0));
    let confirmed = Arc::new(AtomicBool::new(false));
    let live_after_confirm = Arc::new(AtomicU32::new(0));
    let (r2, o2, rd2, c2, l2, p2) =
        (r.clone(), outstanding.clone(), ready.clone(), confirmed.clone(), live_after_confirm.clone(), p.clone());
    let ops = test::on_all_cores(ctx, move |cpu, ctx| {
        let (r, outstanding, confirmed) = (&r2, &o2, &c2);
        // A base reference, taken while the initial one is surely held (the killer waits).
        r.get(ctx);
        // A batch taken in percpu mode and put as soon as this core sees the ref dying: in
        // atomic mode, before the kill's fold (on the killer, deterministically: it has not
        // passed a quiescent point since the kill). Only the bias keeps the count above zero.
        r.get_many(ctx, 8);
        let mut batch = true;
        outstanding.fetch_add(9, Ordering::Relaxed);
        rd2.fetch_add(1, Ordering::Release);
        if cpu == killer {
            let t0 = arch::counter();
            while rd2.load(Ordering::Acquire) != n as u32 {
                assert!(
                    arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000,
                    "the other cores never took their base references"
                );
                rcu::rcu_quiescent_state(ctx);
                arch::cpu_relax();
            }
        }
        let mut ops = 0u64;
        let mut after = 0u32;
        let t0 = arch::counter();
        let mut i = 0u64;
        while after < AFTER_CONFIRM {
            i += 1;
            if cpu == killer && i == 500 {
                let (p3, c3) = (p2.clone(), confirmed.clone());
                let rec = p3.confirm();
                r.kill_and_confirm(ctx, move || {
                    rec();
                    c3.store(true, Ordering::Release);
                });
            }
            if batch && r.is_dying() {
                outstanding.fetch_sub(8, Ordering::Release);
                r.put_many(ctx, 8);
                batch = false;
            }
            let seen_confirm = confirmed.load(Ordering::Acquire);
            if r.tryget_live(ctx) {
                if seen_confirm {
                    l2.fetch_add(1, Ordering::Relaxed);
                }
                outstanding.fetch_add(1, Ordering::Relaxed);
                ops += 1;
                outstanding.fetch_sub(1, Ordering::Release);
                r.put(ctx);
            }
            // Holding the base reference, plain get/put is always allowed.
            r.get(ctx);
            r.put(ctx);
            r.get_many(ctx, 3);
            r.put_many(ctx, 2);
            r.put(ctx);
            assert!(r.tryget(ctx), "tryget failed on core {} while it holds a reference", cpu);
            r.put(ctx);
            ops += 4;
            if seen_confirm {
                after += 1;
            }
            if i.is_multiple_of(16) {
                // Between "requests": lets the kill's grace period end (and, on the killer,
                // runs its callback).
                rcu::rcu_quiescent_state(ctx);
            }
            assert!(
                arch::ticks_to_ns(arch::counter() - t0) < 10_000_000_000,
                "core {}: the kill was never confirmed",
                cpu
            );
        }
        outstanding.fetch_sub(1, Ordering::Release);
        r.put(ctx);
        ops
    });
    wait_until(ctx, "release after the last put", || p.releases() >= 1);
    settle(ctx);
    assert_eq!(p.releases(), 1, "release did not run exactly once");
    assert_eq!(early_releases.load(Ordering::Relaxed), 0, "release ran while references were outstanding");
    assert_eq!(live_after_confirm.load(Ordering::Relaxed), 0, "tryget_live succeeded after the kill was confirmed");
    assert_eq!(p.confirms(), 1, "confirm did not run exactly once");
    assert_eq!(p.releases_seen_by_confirm.load(Ordering::Relaxed), 0, "release ran before confirm");
    assert!(p.confirm_at.load(Ordering::Relaxed) < p.release_at.load(Ordering::Relaxed), "confirm after release");
    assert!(r.is_zero() && r.is_dying());
    assert_eq!(r.misuses(), 0, "misuse reported in a correct run");
    for (cpu, o) in ops.iter().enumerate() {
        assert!(*o > 0, "core {} did no get/put", cpu);
    }
    defmt::info!("concurrent get/put during kill: {} operations on {} cores", ops.iter().sum::<u64>(), n);
}

pub(super) fn tryget_live_fails_on_every_core_once_kill_is_confirmed(ctx: &mut Ctx) {
    let (r, p) = new_ref(Flags::NONE);
    let r2 = r.clone();
    let before = test::on_all_cores(ctx, move |_, ctx| {
        let ok = r2.tryget_live(ctx);
        if ok {
            r2.put(ctx);
        }
        ok
    });
    assert!(before.iter().all(|&ok| ok), "tryget_live failed on a live ref: {:?}", before.as_slice());
    r.get(ctx); // a holder that outlives the kill
    r.kill_and_confirm(ctx, p.confirm());
    wait_until(ctx, "kill confirmation", || p.confirms() == 1);
    assert_eq!(p.releases(), 0, "released while a reference is held");
    let r2 = r.clone();
    let after = test::on_all_cores(ctx, move |_, ctx| {
        let live = r2.tryget_live(ctx);
        if live {
            r2.put(ctx);
        }
        let any = r2.tryget(ctx);
        if any {
            r2.put(ctx);
        }
        (live, any)
    });
    for (cpu, &(live, any)) in after.iter().enumerate() {
        assert!(!live, "core {} got a live reference after the kill was confirmed", cpu);
        assert!(any, "core {}: tryget failed on a dying ref with a reference held", cpu);
    }
    assert_eq!(r.count(), Some(1), "only the holder's reference is left");
    r.put(ctx);
    assert_eq!(p.releases(), 1, "the last put (atomic mode) did not run release");
    assert!(!r.tryget(ctx) && !r.tryget_live(ctx) && r.is_zero());
    settle(ctx);
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 0);
}
