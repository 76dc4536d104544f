//! percpu_ref (`src/sync/percpu_ref/`) under loom.
//!
//! The object a ref protects is a `loom::cell::UnsafeCell`: every holder reads it between its
//! get and its put, and `release` writes it as freeing would. loom fails an execution in which
//! two of those are not ordered by happens-before, and a holder that runs after `release` finds
//! it marked freed; so "release never runs while a reference is held" is checked on every
//! execution. `release` also counts its runs, and the models check it ran exactly once.
//!
//! Core 0 (the main thread) owns the ref and kills or switches it; cores 1 and 2 hold and take
//! references. The RCU stand-in (`model/src/rcu.rs`) runs the switch's callback in
//! `rcu::barrier` or in a waiter's `wait_quiescent`, on whichever core gets it first.
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use quiescent_model::machine::spawn_cpu;
use quiescent_model::sync::percpu_ref::{Flags, PercpuRef};
use quiescent_model::{check, check_fails_without, rcu};
use std::sync::Arc;

const MOD: &str = "src/sync/percpu_ref/mod.rs";
const MODE: &str = "src/sync/percpu_ref/mode.rs";
const FREED: u32 = u32::MAX;

/// The protected object and what its `release` did.
struct Obj {
    data: UnsafeCell<u32>,
    releases: AtomicUsize,
}

// SAFETY: loom runs every thread of a model on one OS thread, and it checks each access to
// `data` against the others (a race fails the execution); the atomic is loom's.
unsafe impl Sync for Obj {}
// SAFETY: as above.
unsafe impl Send for Obj {}

impl Obj {
    fn new() -> Arc<Obj> {
        Arc::new(Obj { data: UnsafeCell::new(0), releases: AtomicUsize::new(0) })
    }

    /// A holder's access (a read: holders may overlap); the object must not have been
    /// released.
    fn touch(&self) {
        // SAFETY: loom checks this access against every other one.
        self.data.with(|p| assert_ne!(unsafe { *p }, FREED, "object used after release"));
    }

    /// The owner's write, alone (before the ref is live, or with the ref dead).
    fn write(&self, v: u32) {
        // SAFETY: as in touch.
        self.data.with_mut(|p| unsafe { *p = v });
    }

    fn release(&self) {
        self.releases.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in touch.
        self.data.with_mut(|p| unsafe {
            assert_ne!(*p, FREED, "released twice");
            *p = FREED;
        });
    }

    fn released(&self) -> usize {
        self.releases.load(Ordering::Relaxed)
    }
}

/// Core 0 waits for a core's thread to end, as a blocking wait (an RCU extended quiescent
/// state, as every wait on the firmware is), so a grace period that core waits for can end.
fn join(t: loom::thread::JoinHandle<()>) {
    rcu::eqs_enter();
    t.join().unwrap();
    rcu::eqs_exit();
}

fn new_ref(o: &Arc<Obj>, flags: Flags) -> Arc<PercpuRef> {
    let o = o.clone();
    PercpuRef::init(move |_| o.release(), flags).expect("the model's allocation cannot fail")
}

/// Core 0 gives core 1 a reference (taken on core 0, so the per-core counters wrap on core 1)
/// and kills the ref; core 1 uses the object, passes a quiescent point while holding it (so the
/// fold can run before its puts), takes and drops a nested reference (on the per-core counter
/// or the atomic count, whichever it finds), uses the object again and drops its reference.
fn get_put_kill() {
    rcu::init();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get();
    let (r1, o1) = (r.clone(), o.clone());
    let t = spawn_cpu(1, move || {
        o1.touch();
        rcu::quiescent_point();
        r1.get();
        o1.touch();
        r1.put();
        o1.touch();
        r1.put();
    });
    r.kill();
    rcu::barrier();
    join(t);
    rcu::barrier();
    assert_eq!(o.released(), 1, "release ran {} times", o.released());
    assert_eq!(r.misuses(), 0, "a misuse was reported");
}

/// Three cores: cores 1 and 2 each hold a reference core 0 gave them and drop it, one on each
/// side of a quiescent point; core 0 kills.
fn two_holders_and_kill() {
    rcu::init();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get_many(2);
    let mut ts = Vec::new();
    for cpu in 1..=2 {
        let (r1, o1) = (r.clone(), o.clone());
        ts.push(spawn_cpu(cpu, move || {
            o1.touch();
            if cpu == 2 {
                rcu::quiescent_point();
            }
            r1.put();
        }));
    }
    r.kill();
    rcu::barrier();
    for t in ts {
        join(t);
    }
    assert_eq!(o.released(), 1, "release ran {} times", o.released());
    assert_eq!(r.misuses(), 0, "a misuse was reported");
}

// Preemption bounds are written into each test.

#[test]
fn release_once_never_while_held() {
    check(3, get_put_kill);
}

#[test]
fn release_once_two_holders_three_cores() {
    check(2, two_holders_and_kill);
}

/// Core 1 passes a quiescent point, then reads whether the kill has been confirmed and tries
/// `tryget_live`: once it has seen the confirmation, the tryget must fail. `confirm` must also
/// run before `release`.
fn tryget_live_after_confirm() {
    rcu::init();
    let o = Obj::new();
    let confirmed = Arc::new(AtomicBool::new(false));
    let o2 = o.clone();
    let r = new_ref(&o, Flags::NONE);
    let (r1, o1, c1) = (r.clone(), o.clone(), confirmed.clone());
    let t = spawn_cpu(1, move || {
        rcu::quiescent_point();
        let seen = c1.load(Ordering::Acquire);
        let ok = r1.tryget_live();
        assert!(!(seen && ok), "tryget_live succeeded after the kill was confirmed");
        if ok {
            o1.touch();
            r1.put();
        }
    });
    let c = confirmed.clone();
    r.kill_and_confirm(move || {
        assert_eq!(o2.released(), 0, "release before confirm");
        c.store(true, Ordering::Release);
    });
    rcu::barrier();
    join(t);
    assert!(confirmed.load(Ordering::Relaxed), "confirm never ran");
    assert_eq!(o.released(), 1);
    assert_eq!(r.misuses(), 0);
}

#[test]
fn tryget_live_fails_once_the_kill_is_confirmed() {
    check(3, tryget_live_after_confirm);
}

/// The fold's arithmetic: core 0 gives core 1 two references (core 0's counter: +2); core 1
/// drops one, passes a quiescent point, takes one and drops one (its counter wraps below
/// zero), while core 0 switches to atomic mode and waits for it. Afterwards the atomic count
/// must be exactly the references held (core 0's initial one and core 1's remaining one),
/// whichever mode each of core 1's operations found: none lost around the switch, and the bias
/// removed exactly. Then back to percpu mode and a kill: release once.
fn fold_is_exact() {
    rcu::init();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get_many(2);
    let (r1, o1) = (r.clone(), o.clone());
    let t = spawn_cpu(1, move || {
        o1.touch();
        r1.put();
        rcu::quiescent_point();
        r1.get();
        r1.put();
    });
    r.switch_to_atomic_sync();
    join(t);
    assert_eq!(r.count(), Some(2), "count after the switch (initial + core 1's)");
    r.put(); // core 1's remaining reference, dropped for it
    r.switch_to_percpu();
    r.kill();
    rcu::barrier();
    assert_eq!(o.released(), 1);
    assert_eq!(r.misuses(), 0);
}

#[test]
fn fold_counts_every_get_and_put_around_the_switch() {
    check(3, fold_is_exact);
}

/// Another core's switch: core 1 calls `switch_to_atomic_sync` while core 0 runs the RCU
/// callbacks (`rcu::barrier`; loom also tries core 1 running them in its wait). Once it
/// returns, core 1 must see the folded count (S). The switch's own reference is dropped after
/// the waiters are let go, so the count may still include it.
fn waiter_sees_the_fold() {
    rcu::init();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get();
    let r1 = r.clone();
    let t = spawn_cpu(1, move || {
        r1.switch_to_atomic_sync();
        let c = r1.count();
        assert!(matches!(c, Some(2) | Some(3)), "count after switch_to_atomic_sync: {c:?}");
        r1.put();
    });
    rcu::barrier();
    join(t);
    rcu::barrier();
    assert_eq!(r.count(), Some(1));
}

#[test]
fn switch_to_atomic_sync_sees_the_folded_count() {
    check(3, waiter_sees_the_fold);
}

/// Back to percpu mode while core 1 keeps putting: core 1 drops one of two references on the
/// per-core counter (it wraps to -1), passes a quiescent point, and drops the other, possibly
/// just after core 0's `switch_to_percpu` zeroed the counters and cleared ATOMIC (R). Then a
/// kill: release exactly once, no put below zero.
fn percpu_again_while_putting() {
    rcu::init();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get_many(2);
    let r1 = r.clone();
    let t = spawn_cpu(1, move || {
        r1.put();
        rcu::quiescent_point();
        r1.put();
    });
    r.switch_to_atomic_sync();
    r.switch_to_percpu();
    join(t);
    r.kill();
    rcu::barrier();
    assert_eq!(o.released(), 1);
    assert_eq!(r.misuses(), 0, "a put below zero: a per-core add lost against the zeroing");
}

#[test]
fn switch_to_percpu_loses_no_put() {
    check(3, percpu_again_while_putting);
}

/// reinit of a dead ref (INIT_DEAD, kept atomic) while core 1 trygets: a core whose tryget
/// succeeds sees what core 0 wrote before reviving the ref (T, pairs with revive's Release).
fn tryget_sees_reinit() {
    rcu::init();
    let o = Obj::new();
    let r = new_ref(&o, Flags::INIT_DEAD | Flags::INIT_ATOMIC);
    let (r1, o1) = (r.clone(), o.clone());
    let t = spawn_cpu(1, move || {
        if r1.tryget() {
            // SAFETY: loom checks this read against core 0's write.
            o1.data.with(|p| assert_eq!(unsafe { *p }, 1, "reinit's write not seen"));
            r1.put();
        }
    });
    o.write(1);
    r.reinit().unwrap();
    r.kill();
    join(t);
    rcu::barrier();
    assert_eq!(o.released(), 1);
    assert_eq!(r.misuses(), 0);
}

#[test]
fn tryget_sees_what_reinit_published() {
    check(3, tryget_sees_reinit);
}

// Negative controls: each labelled ordering left out (made Relaxed at its line; S at its
// Release clear in switch_rcu), or for G the grace period of the labelled call_rcu, and the
// model that needs it must fail. The site must exist: a label that names no barrier line (or,
// for G, no call_rcu) fails the control.

#[test]
fn negative_without_g_fold_without_grace_period() {
    // The firmware's `inject-ref-fold-no-gp` fault, per run: the switch's callback runs
    // without waiting for a grace period, so core 1's get that loaded the percpu word lands on
    // a counter already folded (or freed).
    assert!(check_fails_without(MODE, "G", 2, get_put_kill));
}

#[test]
fn negative_without_z_put_does_not_order_the_holder() {
    assert!(check_fails_without(MOD, "Z", 2, get_put_kill));
}

#[test]
fn negative_without_r_add_lost_against_the_zeroing() {
    assert!(check_fails_without(MODE, "R", 2, percpu_again_while_putting));
}

#[test]
fn negative_without_t_tryget_misses_the_reinit() {
    assert!(check_fails_without(MOD, "T", 3, tryget_sees_reinit));
}

#[test]
fn negative_without_s_waiter_misses_the_fold() {
    assert!(check_fails_without(MODE, "S@switch_rcu", 3, waiter_sees_the_fold));
}

/// F is not shown: the fold is followed, on the same core, by the put of the switch's own
/// reference (Z, AcqRel), so whatever the grace period ordered before the fold is released by
/// that put, and the last put (wherever it runs) acquires it. A Relaxed fold is therefore
/// enough in this implementation (Linux's fold is a plain atomic_long_add); F is kept for
/// clarity. Pinned here: if the model ever rejects the variant, F has become necessary.
#[test]
fn without_f_not_shown_the_switch_reference_put_orders_the_fold() {
    assert!(!check_fails_without(MODE, "F", 3, get_put_kill));
}
