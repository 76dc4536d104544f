//! percpu_ref (`crates/sync/src/percpu_ref/`) under loom.
//!
//! The object a ref protects is a `loom::cell::UnsafeCell`: every holder reads it between its
//! get and its put, and `release` writes it as freeing would. loom fails an execution in which
//! two of those are not ordered by happens-before, and a holder that runs after `release` finds
//! it marked freed; so "release never runs while a reference is held" is checked on every
//! execution. `release` also counts its runs, and the models check it ran exactly once.
//!
//! Core 0 (the main thread) owns the ref and kills or switches it; cores 1 and 2 hold and take
//! references. The RCU stand-in (`crates/platform/src/ideal_rcu.rs`) runs the switch's callback in
//! `rcu::barrier` or in a waiter's `wait_quiescent`, on whichever core gets it first.
//!
//! Each modelled core's thread makes its context (`Ctx`) at its start ([`core_ctx`]) and passes
//! it: `&mut` to what may pass a quiescent point, shared (as `&AtomicCtx`) to the fast paths.
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use quiescent_model::machine::{spawn_cpu, Ctx};
use quiescent_model::sync::percpu_ref::{Flags, PercpuRef};
use quiescent_model::{check, check_fails_without, rcu};
use std::sync::Arc;

const MOD: &str = "crates/sync/src/percpu_ref/mod.rs";
const MODE: &str = "crates/sync/src/percpu_ref/mode.rs";
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
fn join(_ctx: &mut Ctx, t: loom::thread::JoinHandle<()>) {
    // SAFETY: a blocking wait (it takes the context `&mut`): this core holds nothing read under
    // RCU and runs no reader until the eqs_exit below.
    unsafe { rcu::eqs_enter() };
    t.join().unwrap();
    // SAFETY: pairs with the eqs_enter above.
    unsafe { rcu::eqs_exit() };
}

/// Core 0's start: the RCU stand-in registers, and the model's main thread gets core 0's
/// context.
fn boot() -> Ctx {
    // SAFETY: at the start of the model, on core 0, before any other core starts.
    unsafe { rcu::init() };
    core_ctx()
}

/// The context of the modelled core whose thread calls it, at the thread's start.
fn core_ctx() -> Ctx {
    // SAFETY: called once at the start of each modelled core's thread (the main thread for
    // core 0, a `spawn_cpu` thread for the others): that thread is the core's thread of
    // execution, RCU watches it (it is online), no other context exists on it, and it may block.
    unsafe { Ctx::new() }
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
    let ctx = &mut boot();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get(ctx);
    let (r1, o1) = (r.clone(), o.clone());
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        o1.touch();
        rcu::quiescent_point(ctx);
        r1.get(ctx);
        o1.touch();
        r1.put(ctx);
        o1.touch();
        r1.put(ctx);
    });
    r.kill(ctx);
    rcu::barrier(ctx);
    join(ctx, t);
    rcu::barrier(ctx);
    assert_eq!(o.released(), 1, "release ran {} times", o.released());
    assert_eq!(r.misuses(), 0, "a misuse was reported");
}

/// Three cores: cores 1 and 2 each hold a reference core 0 gave them and drop it, one on each
/// side of a quiescent point; core 0 kills.
fn two_holders_and_kill() {
    let ctx = &mut boot();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get_many(ctx, 2);
    let mut ts = Vec::new();
    for cpu in 1..=2 {
        let (r1, o1) = (r.clone(), o.clone());
        ts.push(spawn_cpu(cpu, move || {
            let ctx = &mut core_ctx();
            o1.touch();
            if cpu == 2 {
                rcu::quiescent_point(ctx);
            }
            r1.put(ctx);
        }));
    }
    r.kill(ctx);
    rcu::barrier(ctx);
    for t in ts {
        join(ctx, t);
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
    let ctx = &mut boot();
    let o = Obj::new();
    let confirmed = Arc::new(AtomicBool::new(false));
    let o2 = o.clone();
    let r = new_ref(&o, Flags::NONE);
    let (r1, o1, c1) = (r.clone(), o.clone(), confirmed.clone());
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        rcu::quiescent_point(ctx);
        let seen = c1.load(Ordering::Acquire);
        let ok = r1.tryget_live(ctx);
        assert!(!(seen && ok), "tryget_live succeeded after the kill was confirmed");
        if ok {
            o1.touch();
            r1.put(ctx);
        }
    });
    let c = confirmed.clone();
    r.kill_and_confirm(ctx, move || {
        assert_eq!(o2.released(), 0, "release before confirm");
        c.store(true, Ordering::Release);
    });
    rcu::barrier(ctx);
    join(ctx, t);
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
    let ctx = &mut boot();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get_many(ctx, 2);
    let (r1, o1) = (r.clone(), o.clone());
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        o1.touch();
        r1.put(ctx);
        rcu::quiescent_point(ctx);
        r1.get(ctx);
        r1.put(ctx);
    });
    r.switch_to_atomic_sync(ctx);
    join(ctx, t);
    assert_eq!(r.count(), Some(2), "count after the switch (initial + core 1's)");
    r.put(ctx); // core 1's remaining reference, dropped for it
    r.switch_to_percpu(ctx);
    r.kill(ctx);
    rcu::barrier(ctx);
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
    let ctx = &mut boot();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get(ctx);
    let r1 = r.clone();
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        r1.switch_to_atomic_sync(ctx);
        let c = r1.count();
        assert!(matches!(c, Some(2) | Some(3)), "count after switch_to_atomic_sync: {c:?}");
        r1.put(ctx);
    });
    rcu::barrier(ctx);
    join(ctx, t);
    rcu::barrier(ctx);
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
    let ctx = &mut boot();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    r.get_many(ctx, 2);
    let r1 = r.clone();
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        r1.put(ctx);
        rcu::quiescent_point(ctx);
        r1.put(ctx);
    });
    r.switch_to_atomic_sync(ctx);
    r.switch_to_percpu(ctx);
    join(ctx, t);
    r.kill(ctx);
    rcu::barrier(ctx);
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
    let ctx = &mut boot();
    let o = Obj::new();
    let r = new_ref(&o, Flags::INIT_DEAD | Flags::INIT_ATOMIC);
    let (r1, o1) = (r.clone(), o.clone());
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        if r1.tryget(ctx) {
            // SAFETY: loom checks this read against core 0's write.
            o1.data.with(|p| assert_eq!(unsafe { *p }, 1, "reinit's write not seen"));
            r1.put(ctx);
        }
    });
    o.write(1);
    r.reinit(ctx).unwrap();
    r.kill(ctx);
    join(ctx, t);
    rcu::barrier(ctx);
    assert_eq!(o.released(), 1);
    assert_eq!(r.misuses(), 0);
}

#[test]
fn tryget_sees_what_reinit_published() {
    check(3, tryget_sees_reinit);
}

/// `exit` while another core's fast paths are in flight: core 1 takes and drops a reference
/// (`get(); put()`, each one implicit read-side section, on the per-core counter if it loads
/// the word before exit's store) while core 0 calls `exit` (still in percpu mode: it folds the
/// counters, stores ATOMIC|DEAD and frees the counters after a grace period) and then runs the
/// RCU callbacks (`rcu::barrier`, and again after core 1 has finished). The model's per-core
/// counter fails an execution in which an add through a word loaded before the store is not
/// ordered before the free (loom's causality check on the allocation) or runs after it: the
/// grace period covers the fast paths that loaded the old word. (An add that lands after the
/// fold is lost to the count, the documented cost of exit while the ref is in use; the model
/// checks memory safety only, and that `release` never runs twice.) The firmware before exit
/// freed through a grace period dropped the counter at once: this model failed on it.
fn exit_vs_get_put() {
    let ctx = &mut boot();
    let o = Obj::new();
    let r = new_ref(&o, Flags::NONE);
    let r1 = r.clone();
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        r1.get(ctx);
        r1.put(ctx);
    });
    r.exit();
    rcu::barrier(ctx);
    join(ctx, t);
    rcu::barrier(ctx);
    // The switch exit starts folds every add, the late ones included: only the initial
    // reference is left, and release never ran.
    assert_eq!(o.released(), 0, "release ran");
    assert_eq!(r.count(), Some(1), "the count after exit's fold");
}

#[test]
fn exit_frees_the_counter_only_after_in_flight_fast_paths() {
    check(3, exit_vs_get_put);
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

/// exit's grace period (G: the switch's `call_rcu`, which exit in percpu mode starts) left
/// out: the switch's callback folds and frees the counter at once, as the firmware's exit freed
/// it before, and core 1's get or put that loaded the percpu word before exit's store adds to
/// freed memory.
#[test]
fn negative_without_exit_grace_period_counter_used_after_free() {
    assert!(check_fails_without(MODE, "G", 3, exit_vs_get_put));
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
