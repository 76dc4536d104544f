//! percpu_ref: release exactly once and only after the last put under concurrent get/put and a
//! kill from another core, tryget_live after the kill's confirmation, counts across mode switches
//! (with wrapped per-core counters), resurrect/reinit cycles, INIT_ATOMIC and INIT_DEAD, and every
//! reported misuse.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use quiescent::smp::ipi;
use quiescent::percpu::{self, PerCpuAllocError, PerCpuBox};
use quiescent::sync::percpu_ref::{self as pref, Flags, Misuse, PercpuRef, PercpuRefError};
use quiescent::{arch, rcu, smp, test, MAX_CPUS};

/// Sequence numbers that order events across cores.
static SEQ: AtomicU64 = AtomicU64::new(1);
fn stamp() -> u64 {
    SEQ.fetch_add(1, Ordering::AcqRel)
}

/// What a ref's release and confirm callbacks did.
#[derive(Default)]
struct Probe {
    releases: AtomicU32,
    release_at: AtomicU64,
    confirms: AtomicU32,
    confirm_at: AtomicU64,
    /// Releases seen by the confirm callback when it ran (must be 0).
    releases_seen_by_confirm: AtomicU32,
}

impl Probe {
    fn releases(&self) -> u32 {
        self.releases.load(Ordering::Acquire)
    }
    fn confirms(&self) -> u32 {
        self.confirms.load(Ordering::Acquire)
    }
    /// A confirm callback recording itself.
    fn confirm(self: &Arc<Self>) -> impl FnOnce() + Send + 'static {
        let p = self.clone();
        move || {
            p.releases_seen_by_confirm.fetch_add(p.releases.load(Ordering::Acquire), Ordering::Relaxed);
            p.confirm_at.store(stamp(), Ordering::Relaxed);
            p.confirms.fetch_add(1, Ordering::Release);
        }
    }
}

fn new_ref(flags: Flags) -> (Arc<PercpuRef>, Arc<Probe>) {
    let p = Arc::new(Probe::default());
    let p2 = p.clone();
    let r = PercpuRef::init(
        move |_| {
            p2.release_at.store(stamp(), Ordering::Relaxed);
            p2.releases.fetch_add(1, Ordering::Release);
        },
        flags,
    )
    .expect("percpu_ref init");
    (r, p)
}

/// Waits until `cond`, failing after 5 s. Each turn is a quiescent point (so the grace period
/// being waited for can end) and runs this core's ready RCU callbacks: a switch started on core
/// 0 queues its callback here, and core 0 runs no idle loop while a case runs.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = arch::counter();
    while !cond() {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "{} did not happen within 5 s", what);
        rcu::rcu_quiescent_state();
        rcu::gp_try_complete();
        arch::cpu_relax();
    }
}

/// Waits for every RCU callback queued so far (a late second release would run by then).
fn settle() {
    rcu::rcu_barrier();
    rcu::rcu_barrier();
}

// ---------------------------------------------------------------------------------------------

fn starts_live_in_percpu_mode_and_kill_releases_once() {
    let (r, p) = new_ref(Flags::NONE);
    assert!(r.is_percpu() && !r.is_zero() && !r.is_dying(), "a new ref is live, in percpu mode");
    assert_eq!(r.count(), None, "the count is not known in percpu mode");
    r.get();
    r.put();
    assert!(r.tryget(), "tryget on a live ref");
    r.put();
    assert!(r.tryget_live(), "tryget_live on a live ref");
    r.put();
    assert_eq!(r.percpu_counter(quiescent::percpu::cpu_id()), Some(0), "balanced gets and puts on this core's counter");
    r.kill();
    assert!(r.is_dying() && !r.is_percpu(), "kill makes the ref dying and atomic");
    // No quiescent point on this core since the kill, so its grace period cannot have ended.
    assert_eq!(p.releases(), 0, "release ran before the kill's grace period");
    wait_until("release after kill", || p.releases() == 1);
    assert!(r.is_zero(), "zero after release");
    assert_eq!(r.count(), Some(0));
    settle();
    assert_eq!(p.releases(), 1, "release ran more than once");
    assert_eq!(r.misuses(), 0);
}

fn concurrent_get_put_while_another_core_kills_releases_once_after_last_put() {
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
    let (r2, o2, rd2, c2, l2, p2) = (r.clone(), outstanding.clone(), ready.clone(), confirmed.clone(), live_after_confirm.clone(), p.clone());
    let ops = test::on_all_cores(move |cpu| {
        let (r, outstanding, confirmed) = (&r2, &o2, &c2);
        // A base reference, taken while the initial one is surely held (the killer waits).
        r.get();
        // A batch taken in percpu mode and put as soon as this core sees the ref dying: in
        // atomic mode, before the kill's fold (on the killer, deterministically: it has not
        // passed a quiescent point since the kill). Only the bias keeps the count above zero.
        r.get_many(8);
        let mut batch = true;
        outstanding.fetch_add(9, Ordering::Relaxed);
        rd2.fetch_add(1, Ordering::Release);
        if cpu == killer {
            let t0 = arch::counter();
            while rd2.load(Ordering::Acquire) != n as u32 {
                assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "the other cores never took their base references");
                rcu::rcu_quiescent_state();
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
                r.kill_and_confirm(move || {
                    rec();
                    c3.store(true, Ordering::Release);
                });
            }
            if batch && r.is_dying() {
                outstanding.fetch_sub(8, Ordering::Release);
                r.put_many(8);
                batch = false;
            }
            let seen_confirm = confirmed.load(Ordering::Acquire);
            if r.tryget_live() {
                if seen_confirm {
                    l2.fetch_add(1, Ordering::Relaxed);
                }
                outstanding.fetch_add(1, Ordering::Relaxed);
                ops += 1;
                outstanding.fetch_sub(1, Ordering::Release);
                r.put();
            }
            // Holding the base reference, plain get/put is always allowed.
            r.get();
            r.put();
            r.get_many(3);
            r.put_many(2);
            r.put();
            assert!(r.tryget(), "tryget failed on core {} while it holds a reference", cpu);
            r.put();
            ops += 4;
            if seen_confirm {
                after += 1;
            }
            if i % 16 == 0 {
                // Between "requests": lets the kill's grace period end (and, on the killer,
                // runs its callback).
                rcu::rcu_quiescent_state();
            }
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 10_000_000_000, "core {}: the kill was never confirmed", cpu);
        }
        outstanding.fetch_sub(1, Ordering::Release);
        r.put();
        ops
    });
    wait_until("release after the last put", || p.releases() >= 1);
    settle();
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

fn tryget_live_fails_on_every_core_once_kill_is_confirmed() {
    let (r, p) = new_ref(Flags::NONE);
    let r2 = r.clone();
    let before = test::on_all_cores(move |_| {
        let ok = r2.tryget_live();
        if ok {
            r2.put();
        }
        ok
    });
    assert!(before.iter().all(|&ok| ok), "tryget_live failed on a live ref: {:?}", before.as_slice());
    r.get(); // a holder that outlives the kill
    r.kill_and_confirm(p.confirm());
    wait_until("kill confirmation", || p.confirms() == 1);
    assert_eq!(p.releases(), 0, "released while a reference is held");
    let r2 = r.clone();
    let after = test::on_all_cores(move |_| {
        let live = r2.tryget_live();
        if live {
            r2.put();
        }
        let any = r2.tryget();
        if any {
            r2.put();
        }
        (live, any)
    });
    for (cpu, &(live, any)) in after.iter().enumerate() {
        assert!(!live, "core {} got a live reference after the kill was confirmed", cpu);
        assert!(any, "core {}: tryget failed on a dying ref with a reference held", cpu);
    }
    assert_eq!(r.count(), Some(1), "only the holder's reference is left");
    r.put();
    assert_eq!(p.releases(), 1, "the last put (atomic mode) did not run release");
    assert!(!r.tryget() && !r.tryget_live() && r.is_zero());
    settle();
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 0);
}

fn counts_survive_switches_between_atomic_and_percpu() {
    let (r, p) = new_ref(Flags::NONE);
    let r2 = r.clone();
    let held: i64 = test::on_all_cores(move |cpu| {
        let k = 10 + cpu as u32;
        r2.get_many(k);
        for _ in 0..1000 {
            r2.get();
            r2.put();
        }
        k as i64
    })
    .iter()
    .sum();
    let mut total = 1 + held;
    r.switch_to_atomic_sync();
    assert!(!r.is_percpu());
    assert_eq!(r.count(), Some(total), "count after switching to atomic mode");
    // Puts in atomic mode from every core.
    let r2 = r.clone();
    test::on_all_cores(move |_| r2.put_many(5));
    total -= 5 * smp::num_online() as i64;
    assert_eq!(r.count(), Some(total), "count after atomic-mode puts");
    r.switch_to_percpu();
    assert!(r.is_percpu() && r.count().is_none(), "back in percpu mode");
    // Percpu-mode puts of references taken in atomic mode: every counter goes below zero.
    let r2 = r.clone();
    test::on_all_cores(move |cpu| r2.put_many(5 + cpu as u32));
    for cpu in smp::online_cpus() {
        assert_eq!(r.percpu_counter(cpu), Some((5 + cpu as u32).wrapping_neg()), "core {}'s counter wrapped below zero", cpu);
    }
    r.switch_to_atomic_sync();
    assert_eq!(r.count(), Some(1), "count after the second switch (only the initial reference)");
    // Already atomic: confirm runs at once.
    r.switch_to_atomic(p.confirm());
    assert_eq!(p.confirms(), 1, "switch_to_atomic on an atomic ref did not confirm at once");
    // Around the loop once more, with a pending switch and a confirm.
    r.switch_to_percpu();
    r.get();
    r.switch_to_atomic(p.confirm());
    assert_eq!(p.confirms(), 1, "confirmed before the grace period");
    wait_until("switch confirmation", || p.confirms() == 2);
    assert_eq!(r.count(), Some(2));
    r.put();
    r.kill(); // atomic mode: the initial reference's put releases at once
    assert_eq!(p.releases(), 1, "kill of an atomic ref with no other reference did not release");
    settle();
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 0);
}

fn wrapped_percpu_counters_fold_to_the_right_count() {
    let (r, p) = new_ref(Flags::NONE);
    // Nobody uses the ref yet: put core 0's counter 6 below the wrap and a spare core's 6 above,
    // so the sum (and the count) is unchanged. The spare is the last possible core: offline
    // unless 8 are online, and idle either way; the sum covers every possible core.
    let spare = MAX_CPUS - 1;
    // SAFETY: no core uses the ref yet (this core is core 0 and only stores here).
    unsafe {
        r.set_percpu_counter(0, u32::MAX - 5);
        r.set_percpu_counter(spare, 6);
    }
    // Core 0's ten gets cross the wrap.
    for _ in 0..10 {
        r.get();
    }
    assert_eq!(r.percpu_counter(0), Some(4), "core 0's counter wrapped past zero");
    // Other cores: gets and puts whose counters also cross zero downwards.
    let r2 = r.clone();
    let net: i64 = test::on_all_cores(move |cpu| {
        if cpu == 0 {
            return 0;
        }
        r2.put_many(3); // below zero first (references core 0 took, put here)...
        for _ in 0..(3 + cpu as u32) {
            r2.get(); // ...then back above zero
        }
        cpu as i64 // this core's net gets
    })
    .iter()
    .sum();
    let expected = 1 + 10 + net;
    r.switch_to_atomic_sync();
    assert_eq!(r.count(), Some(expected), "count after folding wrapped counters");
    // Put every reference but the initial one, then kill: released exactly at zero.
    r.put_many((expected - 1) as u32);
    assert_eq!(r.count(), Some(1));
    assert_eq!(p.releases(), 0);
    r.kill();
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 0);
}

fn resurrect_and_reinit_cycles() {
    settle(); // earlier cases' refs freed by pending callbacks would change the byte count
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    let bytes = percpu::dyn_bytes_used();
    for cycle in 0..4u32 {
        assert!(r.is_percpu() && !r.is_dying(), "cycle {}: live and percpu", cycle);
        // Use it from every core, then check the count survived the previous cycle.
        let r2 = r.clone();
        test::on_all_cores(move |cpu| {
            r2.get_many(2 + cpu as u32);
            r2.put_many(2 + cpu as u32);
        });
        r.switch_to_atomic_sync();
        assert_eq!(r.count(), Some(1), "cycle {}: stale per-core counts survived a reinit", cycle);
        r.switch_to_percpu();
        // Kill with a holder, resurrect, kill again.
        r.get();
        let before = p.confirms();
        r.kill_and_confirm(p.confirm());
        wait_until("kill confirmation", || p.confirms() == before + 1);
        assert!(r.is_dying() && !r.tryget_live(), "cycle {}: dying after kill", cycle);
        assert_eq!(p.releases(), cycle, "cycle {}: released with a holder", cycle);
        r.resurrect().expect("resurrect a dying ref");
        assert!(!r.is_dying() && r.is_percpu(), "cycle {}: resurrected into percpu mode", cycle);
        assert!(r.tryget_live(), "cycle {}: tryget_live after resurrect", cycle);
        r.put();
        r.put(); // the holder; the resurrected ref keeps its new initial reference
        r.kill();
        wait_until("release after the second kill", || p.releases() == cycle + 1);
        assert!(r.is_zero());
        r.reinit().expect("reinit at zero with ALLOW_REINIT");
        assert!(!r.is_zero() && !r.is_dying() && r.is_percpu(), "cycle {}: live after reinit", cycle);
        assert_eq!(percpu::dyn_bytes_used(), bytes, "cycle {}: per-cpu memory changed", cycle);
    }
    r.kill();
    wait_until("final release", || p.releases() == 5);
    settle();
    assert_eq!(p.releases(), 5, "one release per cycle");
    assert_eq!(r.misuses(), 0);
}

fn init_atomic_starts_in_atomic_mode() {
    let (r, p) = new_ref(Flags::INIT_ATOMIC);
    assert!(!r.is_percpu() && !r.is_dying());
    assert_eq!(r.count(), Some(1), "INIT_ATOMIC starts with one reference");
    let r2 = r.clone();
    test::on_all_cores(move |_| {
        r2.get_many(4);
        r2.put_many(3);
    });
    assert_eq!(r.count(), Some(1 + smp::num_online() as i64));
    r.put_many(smp::num_online() as u32);
    r.switch_to_percpu();
    assert!(r.is_percpu(), "switch_to_percpu from INIT_ATOMIC");
    r.get_many(7);
    r.switch_to_atomic_sync();
    assert_eq!(r.count(), Some(8));
    r.put_many(7);
    // kill_and_confirm on an atomic ref: confirm after a grace period, before release.
    r.kill_and_confirm(p.confirm());
    assert_eq!((p.confirms(), p.releases()), (0, 0), "confirmed or released before a grace period");
    assert!(!r.tryget_live(), "tryget_live on this core right after its kill");
    wait_until("release", || p.releases() == 1);
    assert_eq!(p.confirms(), 1);
    assert_eq!(p.releases_seen_by_confirm.load(Ordering::Relaxed), 0, "release before confirm");
    assert!(p.confirm_at.load(Ordering::Relaxed) < p.release_at.load(Ordering::Relaxed));
    assert_eq!(r.misuses(), 0);
}

fn init_dead_starts_dead_at_zero() {
    let (r, p) = new_ref(Flags::INIT_DEAD);
    assert!(r.is_dying() && r.is_zero(), "INIT_DEAD starts dead at zero");
    assert_eq!(r.count(), Some(0));
    assert!(!r.tryget() && !r.tryget_live(), "a reference from an INIT_DEAD ref");
    assert_eq!(p.releases(), 0, "release ran for a ref that was never live");
    for round in 1..=2u32 {
        r.reinit().expect("reinit of an INIT_DEAD ref");
        assert!(!r.is_dying() && !r.is_zero() && r.is_percpu(), "live and percpu after reinit");
        let r2 = r.clone();
        test::on_all_cores(move |_| {
            assert!(r2.tryget_live());
            r2.put();
        });
        r.kill();
        wait_until("release", || p.releases() == round);
        assert!(r.is_zero());
    }
    assert_eq!(r.misuses(), 0);
}

fn kill_and_confirm_calls_confirm_before_release() {
    let (r, p) = new_ref(Flags::NONE);
    r.kill_and_confirm(p.confirm());
    assert_eq!((p.confirms(), p.releases()), (0, 0), "confirm or release before the grace period");
    wait_until("release", || p.releases() == 1);
    assert_eq!(p.confirms(), 1, "confirm did not run exactly once");
    assert_eq!(p.releases_seen_by_confirm.load(Ordering::Relaxed), 0, "release ran before confirm");
    assert!(p.confirm_at.load(Ordering::Relaxed) < p.release_at.load(Ordering::Relaxed));
    settle();
    assert_eq!((p.confirms(), p.releases()), (1, 1));
}

fn confirm_waits_for_a_core_inside_a_read_side_section() {
    let Some(c) = smp::online_cpus().find(|&c| c != 0) else { return };
    let (r, p) = new_ref(Flags::NONE);
    let (inside, go) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (r2, i2, g2) = (r.clone(), inside.clone(), go.clone());
    smp::queue_work(c, move || {
        // One work item is one read-side section: a get here, before the kill, is exactly what
        // the kill's grace period must wait for before summing the counters.
        r2.get();
        i2.store(true, Ordering::Release);
        while !g2.load(Ordering::Acquire) {
            arch::cpu_relax();
        }
        r2.put(); // after the kill: the atomic count (still biased)
    });
    wait_until("core entering its section", || inside.load(Ordering::Acquire));
    r.kill_and_confirm(p.confirm());
    let t0 = arch::counter();
    while arch::ticks_to_ns(arch::counter() - t0) < 100_000_000 {
        rcu::rcu_quiescent_state();
        rcu::gp_try_complete();
        assert_eq!((p.confirms(), p.releases()), (0, 0), "confirmed or released while core {} had not passed a quiescent point", c);
    }
    go.store(true, Ordering::Release);
    wait_until("release", || p.releases() == 1);
    assert_eq!(p.confirms(), 1);
    assert_eq!(p.releases_seen_by_confirm.load(Ordering::Relaxed), 0, "release before confirm");
    settle();
    assert_eq!((p.releases(), r.misuses()), (1, 0));
}

// ---------------------------------------------------------------------------------------------
// Misuse: reported by name, counted, and the ref stays usable or cleanly dead.
// ---------------------------------------------------------------------------------------------

fn kill_twice_is_reported_and_ignored() {
    let reports = pref::misuse_reports();
    let (r, p) = new_ref(Flags::NONE);
    r.get(); // a holder: a second put of the initial reference would release under it
    r.kill();
    r.kill_and_confirm(p.confirm());
    assert_eq!(r.misuse_count(Misuse::KillTwice), 1, "second kill not reported");
    assert_eq!(Misuse::KillTwice.text(), "percpu_ref_kill called more than once");
    assert!(pref::misuse_reports() > reports, "global misuse counter unchanged");
    settle();
    assert_eq!(p.releases(), 0, "the second kill dropped the initial reference again");
    assert_eq!(p.confirms(), 0, "the ignored kill's confirm ran");
    assert_eq!(r.count(), Some(1));
    r.put();
    assert_eq!(p.releases(), 1);
    settle();
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 1, "other misuse reported");
}

fn put_below_zero_is_reported_and_leaves_the_ref_dead() {
    assert_eq!(Misuse::PutBelowZero.text(), "percpu_ref put below zero");
    // Atomic mode: the put is refused.
    let (r, p) = new_ref(Flags::INIT_ATOMIC);
    r.put(); // the initial reference: zero, released
    assert_eq!(p.releases(), 1);
    r.put();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1, "atomic-mode put below zero not reported");
    assert_eq!(r.count(), Some(0), "count changed by a refused put");
    r.get();
    assert_eq!(r.misuse_count(Misuse::GetAfterRelease), 1, "get on a released ref not reported");
    assert_eq!(r.count(), Some(0), "a get revived a released ref");
    r.put();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 2);
    assert!(r.is_zero() && !r.tryget());
    assert_eq!(p.releases(), 1, "release ran twice");

    // Percpu mode: only the fold can see it; the ref ends dead at zero, released once.
    let (r, p) = new_ref(Flags::NONE);
    r.put(); // one put too many (the kill drops the initial reference)
    r.kill();
    wait_until("release", || p.releases() >= 1);
    settle();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1, "percpu-mode put below zero not reported at the fold");
    assert_eq!(p.releases(), 1, "release did not run exactly once");
    assert_eq!(r.count(), Some(0), "not cleanly dead at zero");
    assert!(!r.tryget() && !r.tryget_live());

    // A put after the release of a killed ref.
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
    r.put();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1);
    settle();
    assert_eq!(p.releases(), 1);
    assert_eq!(r.count(), Some(0));
}

fn reinit_misuse_returns_named_errors() {
    assert_eq!(PercpuRefError::ReinitNotAllowed.text(), "percpu_ref_reinit without ALLOW_REINIT");
    assert_eq!(PercpuRefError::ReinitNotZero.text(), "percpu_ref_reinit while not zero");
    // Without ALLOW_REINIT.
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
    assert_eq!(r.reinit(), Err(PercpuRefError::ReinitNotAllowed));
    assert_eq!(r.resurrect(), Err(PercpuRefError::ReinitNotAllowed));
    assert_eq!(r.misuse_count(Misuse::ReinitNotAllowed), 2, "reinit/resurrect without ALLOW_REINIT not reported");
    assert!(r.is_zero() && r.is_dying(), "a refused reinit changed the ref");
    assert_eq!(r.percpu_counter(0), None, "the kill of a ref without ALLOW_REINIT kept its per-cpu counters");
    // With ALLOW_REINIT but not at zero.
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    assert_eq!(r.reinit(), Err(PercpuRefError::ReinitNotZero));
    assert_eq!(r.misuse_count(Misuse::ReinitNotZero), 1);
    assert_eq!(r.resurrect(), Err(PercpuRefError::NotDead));
    assert_eq!(r.misuse_count(Misuse::ResurrectNotDead), 1);
    // Still usable.
    assert!(r.is_percpu() && !r.is_dying());
    assert!(r.tryget_live());
    r.put();
    r.switch_to_atomic_sync();
    assert_eq!(r.count(), Some(1), "a refused reinit changed the count");
    r.get();
    r.kill();
    assert_eq!(r.reinit(), Err(PercpuRefError::ReinitNotZero), "reinit while a reference is held");
    r.put();
    assert_eq!(p.releases(), 1);
    r.reinit().expect("reinit at zero");
    r.kill();
    assert_eq!(p.releases(), 2);
    assert_eq!(r.misuses(), 3);
}

fn switch_to_percpu_on_a_dying_ref_is_ignored() {
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    r.get();
    r.kill_and_confirm(p.confirm());
    wait_until("kill confirmation", || p.confirms() == 1);
    r.switch_to_percpu();
    assert_eq!(r.misuse_count(Misuse::SwitchToPercpuDead), 1, "switch_to_percpu on a dying ref not reported");
    assert!(!r.is_percpu() && r.is_dying() && !r.tryget_live(), "switch_to_percpu revived a dying ref");
    assert_eq!(r.count(), Some(1));
    r.put();
    assert_eq!(p.releases(), 1);
    r.switch_to_percpu();
    assert_eq!(r.misuse_count(Misuse::SwitchToPercpuDead), 2, "switch_to_percpu on a released ref not reported");
    assert!(r.is_zero() && !r.is_percpu());
    r.reinit().expect("reinit");
    assert!(r.is_percpu(), "reinit goes back to percpu mode");
    r.kill();
    wait_until("release", || p.releases() == 2);
    assert_eq!(r.misuses(), 2);
}

fn init_fails_cleanly_when_percpu_space_runs_out() {
    let mut hog = Vec::new();
    loop {
        match PerCpuBox::new(0u32) {
            Ok(b) => hog.push(b),
            Err(e) => {
                assert_eq!(e, PerCpuAllocError::OutOfSpace);
                break;
            }
        }
        assert!(hog.len() <= percpu::PERCPU_DYN_SIZE / 4, "the per-cpu area never ran out");
    }
    let e = PercpuRef::init(|_| {}, Flags::NONE).err();
    assert_eq!(e, Some(PercpuRefError::Alloc(PerCpuAllocError::OutOfSpace)), "init without per-cpu space");
    drop(hog);
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
}

fn exit_frees_the_percpu_counters() {
    settle(); // as in resurrect_and_reinit_cycles
    let before = percpu::dyn_bytes_used();
    let (r, p) = new_ref(Flags::NONE);
    assert_eq!(percpu::dyn_bytes_used(), before + pref::PERCPU_BYTES_PER_CPU, "one ref, one u32 per core");
    r.get_many(2);
    r.exit();
    assert_eq!(percpu::dyn_bytes_used(), before, "exit did not free the counters");
    assert!(!r.is_percpu() && r.is_dying());
    assert_eq!(r.count(), Some(3), "exit lost the per-core counts");
    r.put_many(3);
    assert_eq!(p.releases(), 1);
    // Without ALLOW_REINIT the kill frees them once the counts are folded.
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
    assert_eq!(percpu::dyn_bytes_used(), before, "the kill of a ref without ALLOW_REINIT kept its counters");
    // With ALLOW_REINIT they stay until exit, here called from release as Linux users do.
    let r = PercpuRef::init(|r| r.exit(), Flags::ALLOW_REINIT).expect("init");
    r.kill();
    wait_until("exit from release", || percpu::dyn_bytes_used() == before);
    assert!(r.is_zero());
    // exit during the kill's switch: reported, and the switch frees the counters.
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    r.kill();
    r.exit();
    assert_eq!(r.misuse_count(Misuse::ExitWhileSwitching), 1, "exit while switching not reported");
    wait_until("release", || p.releases() == 1);
    settle();
    assert_eq!(percpu::dyn_bytes_used(), before, "counters leaked after exit during a switch");
    assert_eq!(r.count(), Some(0));
    assert_eq!(r.reinit(), Err(PercpuRefError::Exited), "reinit after exit");
}

const LIVE: u64 = 0x4c49_5645; // "LIVE"
const POISON: u64 = 0x6b6b_6b6b_6b6b_6b6b;

/// An aio-style context (Linux's `kioctx`): found through an RCU-protected slot, pinned with
/// `tryget_live` on its `users` ref, released after `kill`, then freed a grace period later.
/// "Freed" here means poisoned and leaked, so a late reader reads the poison rather than memory
/// the allocator handed out again.
struct Ctx {
    magic: AtomicU64,
    releases: AtomicU32,
    users: spin::Once<Arc<PercpuRef>>,
}

impl Ctx {
    fn users(&self) -> &PercpuRef {
        self.users.get().expect("users initialised before publication")
    }
}

/// A few microseconds of busy time, varied by `seed`.
fn dawdle(seed: &mut u64) {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let ns = (*seed >> 33) % 30_000;
    let t0 = arch::counter();
    while arch::ticks_to_ns(arch::counter() - t0) < ns {
        arch::cpu_relax();
    }
}

/// Review hazard 1: percpu_ref get/put/tryget_live in interrupt handlers (call_function_single
/// closures) on a core that sits in a blocking wait, across repeated kills: the handler looks the
/// context up under RCU and pins it, as aio's `lookup_ioctx` does. `release` must run exactly
/// once per context, never while a handler holds a reference, and no handler may see a context
/// freed after its release. Before the IRQ entry left the extended quiescent state, the kill's
/// grace period and the free's did not wait for the handler.
fn get_put_in_interrupt_handlers_on_a_quiescent_waiting_core_across_kill() {
    const CYCLES: usize = 30;
    let o: Vec<usize> = smp::online_cpus().filter(|&c| c != percpu::cpu_id()).collect();
    if o.len() < 2 {
        return; // needs a waiting core and a core to interrupt it
    }
    let waiter = o[0];
    static SLOT: AtomicPtr<Ctx> = AtomicPtr::new(core::ptr::null_mut());
    static HANDLED: AtomicU64 = AtomicU64::new(0);
    static PINNED: AtomicU64 = AtomicU64::new(0);
    static ERRORS: AtomicU32 = AtomicU32::new(0);
    let stop = Arc::new(AtomicBool::new(false));
    // The waiter: a work item in a blocking wait (interrupts enabled) until the end.
    let waiting = Arc::new(AtomicBool::new(false));
    let (w2, s2) = (waiting.clone(), stop.clone());
    smp::queue_work(waiter, move || {
        w2.store(true, Ordering::Release);
        rcu::wait_quiescent(|| !s2.load(Ordering::Acquire));
    });
    wait_until("the waiter's blocking wait", || waiting.load(Ordering::Acquire));
    // The senders: every other core interrupts the waiter with lookups until stopped.
    let senders = Arc::new(AtomicU32::new(0));
    for &c in &o[1..] {
        let (s3, n3) = (stop.clone(), senders.clone());
        n3.fetch_add(1, Ordering::Relaxed);
        smp::queue_work(c, move || {
            let mut seed = c as u64 + 1;
            while !s3.load(Ordering::Acquire) {
                let sd = seed;
                seed = ipi::call_function_single(waiter, move || {
                    let mut seed = sd;
                    let g = rcu::read();
                    let p = rcu::rcu_dereference(&SLOT, &g);
                    if !p.is_null() {
                        // SAFETY: contexts are leaked, never freed (see Ctx).
                        let ctx = unsafe { &*p };
                        dawdle(&mut seed); // between the lookup and the pin
                        if ctx.magic.load(Ordering::Acquire) != LIVE {
                            defmt::error!("a handler's context was freed after its lookup");
                            ERRORS.fetch_add(1, Ordering::Relaxed);
                        } else if ctx.users().tryget_live() {
                            ctx.users().get();
                            ctx.users().put();
                            dawdle(&mut seed);
                            if ctx.releases.load(Ordering::Acquire) != 0 || ctx.magic.load(Ordering::Acquire) != LIVE {
                                defmt::error!("release ran while a handler held a reference");
                                ERRORS.fetch_add(1, Ordering::Relaxed);
                            }
                            ctx.users().put(); // may be the last: release in interrupt context
                            PINNED.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    drop(g);
                    HANDLED.fetch_add(1, Ordering::Relaxed);
                    seed
                });
            }
            n3.fetch_sub(1, Ordering::Release);
        });
    }
    let mut ctxs: Vec<&'static Ctx> = Vec::new();
    for _ in 0..CYCLES {
        let ctx: &'static Ctx = alloc::boxed::Box::leak(alloc::boxed::Box::new(Ctx {
            magic: AtomicU64::new(LIVE),
            releases: AtomicU32::new(0),
            users: spin::Once::new(),
        }));
        let users = PercpuRef::init(
            move |_| {
                ctx.releases.fetch_add(1, Ordering::Release);
                // Free the context a grace period after its release (aio's free_ioctx); this
                // may run in a handler, so call_rcu must be interrupt-safe too.
                rcu::call_rcu(move || ctx.magic.store(POISON, Ordering::Release));
            },
            Flags::NONE,
        )
        .expect("init");
        ctx.users.call_once(|| users);
        ctxs.push(ctx);
        rcu::rcu_assign_pointer(&SLOT, ctx as *const Ctx as *mut Ctx);
        // Let a few handlers find it, then unpublish and kill while they keep coming.
        let h = HANDLED.load(Ordering::Relaxed);
        wait_until("handlers finding the context", || HANDLED.load(Ordering::Relaxed) >= h + 3);
        rcu::rcu_assign_pointer(&SLOT, core::ptr::null_mut());
        ctx.users().kill();
        wait_until("release after kill", || ctx.releases.load(Ordering::Acquire) == 1);
    }
    stop.store(true, Ordering::Release);
    wait_until("the senders to stop", || senders.load(Ordering::Acquire) == 0);
    settle();
    for (i, ctx) in ctxs.iter().enumerate() {
        assert_eq!(ctx.releases.load(Ordering::Acquire), 1, "context {} released more than once", i);
        assert_eq!(ctx.magic.load(Ordering::Acquire), POISON, "context {} never freed", i);
        assert_eq!(ctx.users().misuses(), 0, "context {}: misuse reported", i);
    }
    assert_eq!(ERRORS.load(Ordering::Relaxed), 0, "a handler used a released or freed context");
    assert!(PINNED.load(Ordering::Relaxed) > 0, "no handler ever pinned a context");
    defmt::info!("{} handlers, {} pinned a context, over {} kills", HANDLED.load(Ordering::Relaxed), PINNED.load(Ordering::Relaxed), CYCLES);
}

quiescent::tests!(
    get_put_in_interrupt_handlers_on_a_quiescent_waiting_core_across_kill,
    starts_live_in_percpu_mode_and_kill_releases_once,
    concurrent_get_put_while_another_core_kills_releases_once_after_last_put,
    tryget_live_fails_on_every_core_once_kill_is_confirmed,
    counts_survive_switches_between_atomic_and_percpu,
    wrapped_percpu_counters_fold_to_the_right_count,
    resurrect_and_reinit_cycles,
    init_atomic_starts_in_atomic_mode,
    init_dead_starts_dead_at_zero,
    kill_and_confirm_calls_confirm_before_release,
    confirm_waits_for_a_core_inside_a_read_side_section,
    kill_twice_is_reported_and_ignored,
    put_below_zero_is_reported_and_leaves_the_ref_dead,
    reinit_misuse_returns_named_errors,
    switch_to_percpu_on_a_dying_ref_is_ignored,
    init_fails_cleanly_when_percpu_space_runs_out,
    exit_frees_the_percpu_counters,
);
