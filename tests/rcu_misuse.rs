//! Expected-failure image: the RCU misuse named by `misuse=<kind>` on the command line must be
//! caught (debug builds) with a named error and a non-zero exit.
//!
//! kinds: `qs-in-reader`, `sync-in-reader`, `idle-in-reader` (a work item returns to the idle
//! loop inside a read-side section, on core 1), `unbalanced-unlock`, `use-after-free` (a list
//! node freed without a grace period while a reader stands before it), and percpu-rwsem misuse:
//! `percpu-up-read-unbalanced`, `percpu-up-write-not-held`, `percpu-down-write-in-reader`; waits
//! that would never end: `rcu-barrier-in-callback`, `percpu-ref-wait-in-callback`; blocking
//! where it may not: `percpu-ref-switch-in-reader`, `percpu-ref-reinit-in-reader`,
//! `synchronize-rcu-in-irq`; readers where RCU is not watching: `reader-in-quiescent-wait`,
//! `percpu-ref-get-in-quiescent-wait`.
//!
//! Most of these are compile errors in safe code now (the execution contexts: a guard borrows the
//! context that a quiescent point needs `&mut`, an interrupt handler or a callback has no
//! blocking context, a wait's condition none at all; the compile-fail suite covers them). The
//! run-time checks behind them stay, for unsafe code that gets it wrong: each such kind here
//! forges the context it lacks (`unsafe { Ctx::new() }`, `AtomicCtx::new()`) to reach its check.
//! The unbalanced releases need `unsafe` (releasing is unsafe) and reach theirs directly.
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::{ipi, AtomicCtx, Ctx};
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::sync::{percpu_rwsem::PercpuRwSem, RwSemaphore};
use quiescent::{board, smp};

fn misuse(ctx: &mut Ctx) {
    let kind = board::bootarg("misuse").expect("the rcu_misuse image needs misuse=<kind>");
    match kind {
        "qs-in-reader" => {
            let _g = rcu::read(ctx);
            // SAFETY: deliberately unsound, the misuse under test: a second context for this
            // core, so that a quiescent state runs while the guard borrows `ctx` (safe code gets
            // a compile error instead: the compile-fail suite covers it); the run-time check
            // must name it.
            rcu::rcu_quiescent_state(&mut unsafe { Ctx::new() });
        }
        "sync-in-reader" => {
            let _g = rcu::read(ctx);
            // SAFETY: deliberately unsound, the misuse under test: a second context for this
            // core, so that synchronize_rcu runs while the guard borrows `ctx` (safe code gets a
            // compile error instead: the compile-fail suite covers it); the run-time check must
            // name it.
            rcu::synchronize_rcu(&mut unsafe { Ctx::new() });
        }
        "idle-in-reader" => {
            assert!(smp::num_online() > 1, "needs two cores");
            smp::queue_work(1, |ctx| core::mem::forget(rcu::read(ctx)));
            // Core 1 panics when its idle loop reaches the quiescent point; wait for it.
            loop {
                quiescent::arch::wfe();
            }
        }
        "unbalanced-unlock" => {
            // SAFETY: deliberately unsound, the misuse under test: an unlock that pairs with no
            // rcu_read_lock; the run-time check must name it.
            unsafe { rcu::rcu_read_unlock() }
        }
        "use-after-free" => {
            let list = RcuList::new();
            list.add_head(2u64);
            list.add_head(1u64);
            let g = rcu::read(ctx);
            let mut it = list.iter(&g);
            assert_eq!(it.next(), Some(&1));
            // The updater frees the next node with no grace period: the reader must catch it.
            let removed = list.remove(|&v| v == 2).unwrap();
            // SAFETY: deliberately unsound (a reader stands before the node): the misuse under test.
            unsafe { removed.free_now() };
            let v = it.next();
            panic!("reader walked onto a freed node unnoticed ({:?})", v);
        }
        "percpu-up-read-unbalanced" => {
            let l = PercpuRwSem::new().unwrap();
            l.down_read(ctx);
            // SAFETY: pairs with the down_read above.
            unsafe { l.up_read(ctx) };
            // SAFETY: deliberately unsound, the misuse under test: a release that pairs with no
            // down_read; the run-time check must name it.
            unsafe { l.up_read(ctx) };
        }
        "percpu-up-write-not-held" => {
            let l = PercpuRwSem::new().unwrap();
            // SAFETY: deliberately unsound, the misuse under test: releasing a write hold this
            // core does not have; the run-time check must name it.
            unsafe { l.up_write() };
        }
        "percpu-down-write-in-reader" => {
            let l = PercpuRwSem::new().unwrap();
            let _g = rcu::read(ctx);
            // SAFETY: deliberately unsound, the misuse under test: a second context for this
            // core, so that percpu_down_write (which waits for a grace period) runs while the
            // guard borrows `ctx` (safe code gets a compile error instead: the compile-fail suite
            // covers it); the run-time check must name it.
            l.down_write(&mut unsafe { Ctx::new() });
        }
        // Hazard 3: from an RCU callback, rcu_barrier would wait for its own core's marker,
        // queued behind the running callback: without the check, a hang.
        "rcu-barrier-in-callback" => {
            rcu::call_rcu(|_| {
                // SAFETY: deliberately unsound, the misuse under test: a blocking context inside
                // an RCU callback, which gets only an AtomicCtx (safe code gets a compile error
                // instead: the compile-fail suite covers it); the run-time check must name it.
                rcu::rcu_barrier(&mut unsafe { Ctx::new() })
            });
            run_callbacks_until_caught(ctx);
        }
        // Hazard 3: a percpu_ref switch that must wait, from an RCU callback: the switch's own
        // callback is queued behind the running one: without the check, a hang.
        "percpu-ref-wait-in-callback" => {
            let r = PercpuRef::init(|_| {}, Flags::NONE).unwrap();
            rcu::call_rcu(move |_| {
                // SAFETY: deliberately unsound, the misuse under test: a blocking context inside
                // an RCU callback, which gets only an AtomicCtx (safe code gets a compile error
                // instead: the compile-fail suite covers it); the run-time check must name it.
                r.switch_to_atomic_sync(&mut unsafe { Ctx::new() })
            });
            run_callbacks_until_caught(ctx);
        }
        // Hazard 5: percpu_ref mode changes may pass quiescent points, so they are named inside
        // a read-side section even when nothing is pending (debug builds).
        "percpu-ref-switch-in-reader" => {
            let r = PercpuRef::init(|_| {}, Flags::INIT_ATOMIC).unwrap();
            let _g = rcu::read(ctx);
            // SAFETY: deliberately unsound, the misuse under test: a second context for this
            // core, so that a mode change (which may pass quiescent points) runs while the guard
            // borrows `ctx` (safe code gets a compile error instead: the compile-fail suite
            // covers it); the run-time check must name it.
            r.switch_to_percpu(&mut unsafe { Ctx::new() });
        }
        "percpu-ref-reinit-in-reader" => {
            let r = PercpuRef::init(|_| {}, Flags::INIT_DEAD).unwrap();
            let _g = rcu::read(ctx);
            // SAFETY: deliberately unsound, the misuse under test: as for
            // percpu-ref-switch-in-reader, a second context while the guard borrows `ctx` (a
            // compile error in safe code); the run-time check must name it.
            let _ = r.reinit(&mut unsafe { Ctx::new() });
        }
        // Blocking in an interrupt handler would wait on the code it interrupted.
        "synchronize-rcu-in-irq" => {
            assert!(smp::num_online() > 1, "needs two cores");
            ipi::call_function_single(ctx, 1, |_| {
                // SAFETY: deliberately unsound, the misuse under test: a blocking context inside
                // an interrupt handler, which gets only an AtomicCtx (safe code gets a compile
                // error instead: the compile-fail suite covers it); the run-time check must name
                // it.
                rcu::synchronize_rcu(&mut unsafe { Ctx::new() })
            });
        }
        // A read-side section where RCU does not watch (a quiescent wait's condition), and the
        // fast paths that rely on an implicit one (debug builds).
        "reader-in-quiescent-wait" => {
            rcu::wait_quiescent(ctx, || {
                // SAFETY: deliberately unsound, the misuse under test: a context inside a
                // quiescent wait's condition, which gets none because RCU does not watch this core
                // there (safe code gets a compile error instead: the compile-fail suite covers
                // it); the run-time check must name it.
                let _g = rcu::read(unsafe { AtomicCtx::new() });
                false
            });
        }
        "percpu-ref-get-in-quiescent-wait" => {
            let r = PercpuRef::init(|_| {}, Flags::NONE).unwrap();
            rcu::wait_quiescent(ctx, || {
                // SAFETY: deliberately unsound, the misuse under test: as for
                // reader-in-quiescent-wait, a context where RCU does not watch (a compile error in
                // safe code); the run-time check must name it.
                r.get(unsafe { AtomicCtx::new() });
                false
            });
        }
        other => panic!("unknown misuse `{}`", other),
    }
    panic!("misuse `{}` was not detected", kind);
}

/// Core 0 runs its callbacks at quiescent points: pass them until the misuse is caught (a
/// panic) or 5 s have gone by.
fn run_callbacks_until_caught(ctx: &mut Ctx) {
    let t0 = quiescent::arch::counter();
    while quiescent::arch::ticks_to_ns(quiescent::arch::counter() - t0) < 5_000_000_000 {
        rcu::rcu_quiescent_state(ctx);
        rcu::stats::gp_try_complete();
    }
}

quiescent::tests!(misuse);
