//! Counts across mode switches (with wrapped per-core counters), resurrect/reinit cycles,
//! INIT_ATOMIC and INIT_DEAD, when a kill's confirm runs, and when exit frees the counters.

use super::{new_ref, settle, wait_until};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, Ordering};
use quiescent::percpu;
use quiescent::smp::{self, Ctx};
use quiescent::sync::percpu_ref::{Flags, PERCPU_BYTES_PER_CPU};
use quiescent::{arch, rcu, test};

pub(super) fn counts_survive_switches_between_atomic_and_percpu(ctx: &mut Ctx) {
    let (r, p) = new_ref(Flags::NONE);
    let r2 = r.clone();
    let held: i64 = test::on_all_cores(ctx, move |cpu, ctx| {
        let k = 10 + cpu as u32;
        r2.get_many(ctx, k);
        for _ in 0..1000 {
            r2.get(ctx);
            r2.put(ctx);
        }
        k as i64
    })
    .iter()
    .sum();
    let mut total = 1 + held;
    r.switch_to_atomic_sync(ctx);
    assert!(!r.is_percpu());
    assert_eq!(r.count(), Some(total), "count after switching to atomic mode");
    // Puts in atomic mode from every core.
    let r2 = r.clone();
    test::on_all_cores(ctx, move |_, ctx| r2.put_many(ctx, 5));
    total -= 5 * smp::num_online() as i64;
    assert_eq!(r.count(), Some(total), "count after atomic-mode puts");
    r.switch_to_percpu(ctx);
    assert!(r.is_percpu() && r.count().is_none(), "back in percpu mode");
    // Percpu-mode puts of references taken in atomic mode: every counter goes below zero.
    let r2 = r.clone();
    test::on_all_cores(ctx, move |cpu, ctx| r2.put_many(ctx, 5 + cpu as u32));
    for cpu in smp::online_cpus() {
        assert_eq!(
            r.percpu_counter(cpu),
            Some((5 + cpu as u64).wrapping_neg()),
            "core {}'s counter wrapped below zero",
            cpu
        );
    }
    r.switch_to_atomic_sync(ctx);
    assert_eq!(r.count(), Some(1), "count after the second switch (only the initial reference)");
    // Already atomic: confirm runs at once.
    r.switch_to_atomic(ctx, p.confirm());
    assert_eq!(p.confirms(), 1, "switch_to_atomic on an atomic ref did not confirm at once");
    // Around the loop once more, with a pending switch and a confirm.
    r.switch_to_percpu(ctx);
    r.get(ctx);
    r.switch_to_atomic(ctx, p.confirm());
    assert_eq!(p.confirms(), 1, "confirmed before the grace period");
    wait_until(ctx, "switch confirmation", || p.confirms() == 2);
    assert_eq!(r.count(), Some(2));
    r.put(ctx);
    r.kill(ctx); // atomic mode: the initial reference's put releases at once
    assert_eq!(p.releases(), 1, "kill of an atomic ref with no other reference did not release");
    settle(ctx);
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 0);
}

pub(super) fn wrapped_percpu_counters_fold_to_the_right_count(ctx: &mut Ctx) {
    // Per-cpu counters exist for the cores this run set up only (no spare area beyond them):
    // with one core there is no second counter to balance core 0's.
    if smp::num_possible() < 2 {
        return;
    }
    let (r, p) = new_ref(Flags::NONE);
    // Nobody uses the ref yet: put core 0's counter 6 below the wrap and a spare core's 6 above,
    // so the sum (and the count) is unchanged. The spare is the last core set up; its own gets
    // and puts below add to its counter; the sum covers every core set up.
    let spare = smp::num_possible() - 1;
    // SAFETY: no core uses the ref yet (this core is core 0 and only stores here).
    unsafe {
        r.set_percpu_counter(0, u64::MAX - 5);
        r.set_percpu_counter(spare, 6);
    }
    // Core 0's ten gets cross the wrap.
    for _ in 0..10 {
        r.get(ctx);
    }
    assert_eq!(r.percpu_counter(0), Some(4), "core 0's counter wrapped past zero");
    // Other cores: gets and puts whose counters also cross zero downwards.
    let r2 = r.clone();
    let net: i64 = test::on_all_cores(ctx, move |cpu, ctx| {
        if cpu == 0 {
            return 0;
        }
        r2.put_many(ctx, 3); // below zero first (references core 0 took, put here)...
        for _ in 0..(3 + cpu as u32) {
            r2.get(ctx); // ...then back above zero
        }
        cpu as i64 // this core's net gets
    })
    .iter()
    .sum();
    let expected = 1 + 10 + net;
    r.switch_to_atomic_sync(ctx);
    assert_eq!(r.count(), Some(expected), "count after folding wrapped counters");
    // Put every reference but the initial one, then kill: released exactly at zero.
    r.put_many(ctx, (expected - 1) as u32);
    assert_eq!(r.count(), Some(1));
    assert_eq!(p.releases(), 0);
    r.kill(ctx);
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 0);
}

pub(super) fn resurrect_and_reinit_cycles(ctx: &mut Ctx) {
    settle(ctx); // earlier cases' refs freed by pending callbacks would change the byte count
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    let bytes = percpu::dyn_bytes_used();
    for cycle in 0..4u32 {
        assert!(r.is_percpu() && !r.is_dying(), "cycle {}: live and percpu", cycle);
        // Use it from every core, then check the count survived the previous cycle.
        let r2 = r.clone();
        test::on_all_cores(ctx, move |cpu, ctx| {
            r2.get_many(ctx, 2 + cpu as u32);
            r2.put_many(ctx, 2 + cpu as u32);
        });
        r.switch_to_atomic_sync(ctx);
        assert_eq!(r.count(), Some(1), "cycle {}: stale per-core counts survived a reinit", cycle);
        r.switch_to_percpu(ctx);
        // Kill with a holder, resurrect, kill again.
        r.get(ctx);
        let before = p.confirms();
        r.kill_and_confirm(ctx, p.confirm());
        wait_until(ctx, "kill confirmation", || p.confirms() == before + 1);
        assert!(r.is_dying() && !r.tryget_live(ctx), "cycle {}: dying after kill", cycle);
        assert_eq!(p.releases(), cycle, "cycle {}: released with a holder", cycle);
        r.resurrect(ctx).expect("resurrect a dying ref");
        assert!(!r.is_dying() && r.is_percpu(), "cycle {}: resurrected into percpu mode", cycle);
        assert!(r.tryget_live(ctx), "cycle {}: tryget_live after resurrect", cycle);
        r.put(ctx);
        r.put(ctx); // the holder; the resurrected ref keeps its new initial reference
        r.kill(ctx);
        wait_until(ctx, "release after the second kill", || p.releases() == cycle + 1);
        assert!(r.is_zero());
        r.reinit(ctx).expect("reinit at zero with ALLOW_REINIT");
        assert!(!r.is_zero() && !r.is_dying() && r.is_percpu(), "cycle {}: live after reinit", cycle);
        assert_eq!(percpu::dyn_bytes_used(), bytes, "cycle {}: per-cpu memory changed", cycle);
    }
    r.kill(ctx);
    wait_until(ctx, "final release", || p.releases() == 5);
    settle(ctx);
    assert_eq!(p.releases(), 5, "one release per cycle");
    assert_eq!(r.misuses(), 0);
}

pub(super) fn init_atomic_starts_in_atomic_mode(ctx: &mut Ctx) {
    let (r, p) = new_ref(Flags::INIT_ATOMIC);
    assert!(!r.is_percpu() && !r.is_dying());
    assert_eq!(r.count(), Some(1), "INIT_ATOMIC starts with one reference");
    let r2 = r.clone();
    test::on_all_cores(ctx, move |_, ctx| {
        r2.get_many(ctx, 4);
        r2.put_many(ctx, 3);
    });
    assert_eq!(r.count(), Some(1 + smp::num_online() as i64));
    r.put_many(ctx, smp::num_online() as u32);
    r.switch_to_percpu(ctx);
    assert!(r.is_percpu(), "switch_to_percpu from INIT_ATOMIC");
    r.get_many(ctx, 7);
    r.switch_to_atomic_sync(ctx);
    assert_eq!(r.count(), Some(8));
    r.put_many(ctx, 7);
    // kill_and_confirm on an atomic ref: confirm after a grace period, before release.
    r.kill_and_confirm(ctx, p.confirm());
    assert_eq!((p.confirms(), p.releases()), (0, 0), "confirmed or released before a grace period");
    assert!(!r.tryget_live(ctx), "tryget_live on this core right after its kill");
    wait_until(ctx, "release", || p.releases() == 1);
    assert_eq!(p.confirms(), 1);
    assert_eq!(p.releases_seen_by_confirm.load(Ordering::Relaxed), 0, "release before confirm");
    assert!(p.confirm_at.load(Ordering::Relaxed) < p.release_at.load(Ordering::Relaxed));
    assert_eq!(r.misuses(), 0);
}

pub(super) fn init_dead_starts_dead_at_zero(ctx: &mut Ctx) {
    let (r, p) = new_ref(Flags::INIT_DEAD);
    assert!(r.is_dying() && r.is_zero(), "INIT_DEAD starts dead at zero");
    assert_eq!(r.count(), Some(0));
    assert!(!r.tryget(ctx) && !r.tryget_live(ctx), "a reference from an INIT_DEAD ref");
    assert_eq!(p.releases(), 0, "release ran for a ref that was never live");
    for round in 1..=2u32 {
        r.reinit(ctx).expect("reinit of an INIT_DEAD ref");
        assert!(!r.is_dying() && !r.is_zero() && r.is_percpu(), "live and percpu after reinit");
        let r2 = r.clone();
        test::on_all_cores(ctx, move |_, ctx| {
            assert!(r2.tryget_live(ctx));
            r2.put(ctx);
        });
        r.kill(ctx);
        wait_until(ctx, "release", || p.releases() == round);
        assert!(r.is_zero());
    }
    assert_eq!(r.misuses(), 0);
}

pub(super) fn kill_and_confirm_calls_confirm_before_release(ctx: &mut Ctx) {
    let (r, p) = new_ref(Flags::NONE);
    r.kill_and_confirm(ctx, p.confirm());
    assert_eq!((p.confirms(), p.releases()), (0, 0), "confirm or release before the grace period");
    wait_until(ctx, "release", || p.releases() == 1);
    assert_eq!(p.confirms(), 1, "confirm did not run exactly once");
    assert_eq!(p.releases_seen_by_confirm.load(Ordering::Relaxed), 0, "release ran before confirm");
    assert!(p.confirm_at.load(Ordering::Relaxed) < p.release_at.load(Ordering::Relaxed));
    settle(ctx);
    assert_eq!((p.confirms(), p.releases()), (1, 1));
}

pub(super) fn confirm_waits_for_a_core_inside_a_read_side_section(ctx: &mut Ctx) {
    let Some(c) = smp::online_cpus().find(|&c| c != 0) else { return };
    let (r, p) = new_ref(Flags::NONE);
    let (inside, go) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (r2, i2, g2) = (r.clone(), inside.clone(), go.clone());
    smp::queue_work(c, move |ctx| {
        // One work item is one read-side section: a get here, before the kill, is exactly what
        // the kill's grace period must wait for before summing the counters.
        r2.get(ctx);
        i2.store(true, Ordering::Release);
        while !g2.load(Ordering::Acquire) {
            arch::cpu_relax();
        }
        r2.put(ctx); // after the kill: the atomic count (still biased)
    });
    wait_until(ctx, "core entering its section", || inside.load(Ordering::Acquire));
    r.kill_and_confirm(ctx, p.confirm());
    let t0 = arch::counter();
    while arch::ticks_to_ns(arch::counter() - t0) < 100_000_000 {
        rcu::rcu_quiescent_state(ctx);
        rcu::stats::gp_try_complete();
        assert_eq!(
            (p.confirms(), p.releases()),
            (0, 0),
            "confirmed or released while core {} had not passed a quiescent point",
            c
        );
    }
    go.store(true, Ordering::Release);
    wait_until(ctx, "release", || p.releases() == 1);
    assert_eq!(p.confirms(), 1);
    assert_eq!(p.releases_seen_by_confirm.load(Ordering::Relaxed), 0, "release before confirm");
    settle(ctx);
    assert_eq!((p.releases(), r.misuses()), (1, 0));
}

/// `exit` frees the per-cpu counters one grace period later, not at once: a get or put on another
/// core that loaded the percpu word before the exit (one implicit read-side section) may still add
/// to them after it, and must not land in a counter the allocator has handed to a new ref. Core
/// `c` takes a reference in percpu mode and stays inside that work item (no quiescent point, so no
/// grace period can end) across the exit, its put and the allocation of a new ref on this core:
/// the new ref must get a different slot (the per-cpu bytes in use show the exited counters still
/// allocated) with every counter zero. Once a grace period has passed the exited counters are
/// freed and a new ref may reuse them. Before, exit freed them at once, so the new ref got the
/// exited ref's slot while core `c` was still inside its section.
pub(super) fn exit_keeps_the_counter_until_a_grace_period(ctx: &mut Ctx) {
    let Some(c) = smp::online_cpus().find(|&c| c != 0) else { return };
    settle(ctx); // earlier cases' counters freed by pending callbacks would change the byte count
    let before = percpu::dyn_bytes_used();
    let (r, p) = new_ref(Flags::NONE);
    let (held, exited, put, checked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (r2, h2, e2, p2, c2) = (r.clone(), held.clone(), exited.clone(), put.clone(), checked.clone());
    smp::queue_work(c, move |ctx| {
        // One work item is one read-side section: nothing here is a quiescent point.
        r2.get(ctx); // percpu mode: core c's counter
        h2.store(true, Ordering::Release);
        while !e2.load(Ordering::Acquire) {
            arch::cpu_relax();
        }
        r2.put(ctx); // after the exit
        p2.store(true, Ordering::Release);
        while !c2.load(Ordering::Acquire) {
            arch::cpu_relax();
        }
    });
    wait_until(ctx, "core c holding a reference", || held.load(Ordering::Acquire));
    r.exit();
    assert!(!r.is_percpu() && r.is_dying());
    exited.store(true, Ordering::Release);
    wait_until(ctx, "core c's put after the exit", || put.load(Ordering::Acquire));
    // Core c has not left its section: no grace period since the exit.
    let (fresh, _) = new_ref(Flags::NONE);
    assert_eq!(
        percpu::dyn_bytes_used(),
        before + 2 * PERCPU_BYTES_PER_CPU,
        "exit freed the counters before a grace period (the new ref got them)"
    );
    for cpu in smp::online_cpus() {
        assert_eq!(fresh.percpu_counter(cpu), Some(0), "core {}: the new ref's counter is not zero", cpu);
    }
    checked.store(true, Ordering::Release);
    // A grace period (core c leaves its section), then the exit's callback frees the counters.
    rcu::synchronize_rcu(ctx);
    settle(ctx);
    assert_eq!(percpu::dyn_bytes_used(), before + PERCPU_BYTES_PER_CPU, "the exited counters were not freed");
    let (again, _) = new_ref(Flags::NONE); // may reuse them
    assert_eq!(percpu::dyn_bytes_used(), before + 2 * PERCPU_BYTES_PER_CPU);
    for cpu in smp::online_cpus() {
        assert_eq!(again.percpu_counter(cpu), Some(0), "core {}: a reused counter is not zero", cpu);
    }
    assert_eq!(r.count(), Some(1), "exit folded core c's get, its put went to the atomic count");
    assert_eq!((p.releases(), r.misuses()), (0, 0));
}

/// An object owned by its percpu_ref, for the `PercpuObj` case: poisoned and counted when freed.
struct Io {
    id: u64,
    live: core::sync::atomic::AtomicU64,
    frees: Arc<core::sync::atomic::AtomicUsize>,
}

const IO_LIVE: u64 = 0x10_11fe;

impl Drop for Io {
    fn drop(&mut self) {
        self.live.store(0xdead, Ordering::Relaxed);
        self.frees.fetch_add(1, Ordering::Relaxed);
    }
}

/// `PercpuObj` (aio's kioctx): lookups under RCU on every other core turn into counted
/// references (`tryget_live`) that outlive their read section and cross quiescent states; after
/// the unlink and the kill, lookups fail, a reference taken before still keeps the object, and
/// the object is freed exactly once, after the last put, never while a reference is held.
pub(super) fn percpu_obj_lives_until_its_last_counted_reference(ctx: &mut Ctx) {
    use core::sync::atomic::{AtomicU64, AtomicUsize};
    use quiescent::rcu::list::RcuList;
    use quiescent::sync::percpu_ref::PercpuObj;
    let frees = Arc::new(AtomicUsize::new(0));
    let table: Arc<RcuList<PercpuObj<Io>>> = Arc::new(RcuList::new());
    let io = PercpuObj::new(Io { id: 7, live: AtomicU64::new(IO_LIVE), frees: frees.clone() }).expect("PercpuObj");
    table.add_head(io.clone());
    let held = io.tryget_live(ctx).expect("a live object");
    drop(io); // only the table and the references keep it now
    let (stop, found, running) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicUsize::new(0)));
    let others = test::others();
    for &c in &others {
        let (table, stop, found, running) = (table.clone(), stop.clone(), found.clone(), running.clone());
        smp::queue_work(c, move |ctx| {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                let r = {
                    let g = rcu::read(ctx);
                    table.iter(&g).find(|o| o.id == 7).and_then(|o| o.tryget_live(&g))
                };
                // The reference crosses a quiescent state: only its count keeps the object.
                rcu::rcu_quiescent_state(ctx);
                if let Some(r) = r {
                    assert_eq!(r.live.load(Ordering::Relaxed), IO_LIVE, "a counted reference to a freed object");
                    n += 1;
                    found.fetch_add(1, Ordering::Relaxed);
                    if n.is_multiple_of(2) {
                        r.put(ctx);
                    } else {
                        drop(r);
                    }
                }
            }
            running.fetch_add(1, Ordering::Release);
        });
    }
    // Let the lookups run, then io_destroy: unlink, kill.
    let want = 100 * others.len() as u64;
    super::wait_until(ctx, "the lookups finding the object", || found.load(Ordering::Relaxed) >= want);
    let gone = table.remove(|o| o.id == 7).expect("the object in the table");
    gone.val().kill(ctx);
    assert!(gone.val().tryget_live(ctx).is_none(), "tryget_live after the kill");
    drop(gone);
    stop.store(true, Ordering::Release);
    super::wait_until(ctx, "the lookups stopping", || running.load(Ordering::Acquire) == others.len());
    // Every reference but `held` is put: the object must still be there.
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
    assert_eq!(frees.load(Ordering::Relaxed), 0, "freed while a counted reference was held");
    assert_eq!(held.live.load(Ordering::Relaxed), IO_LIVE);
    // The last put: released, then freed after a grace period (once).
    held.put(ctx);
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
    assert_eq!(frees.load(Ordering::Relaxed), 1, "the object freed exactly once after its last put");
    assert!(others.is_empty() || found.load(Ordering::Relaxed) > 0, "no lookup found the object");
}
