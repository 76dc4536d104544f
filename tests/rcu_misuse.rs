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
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::ipi;
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::sync::{percpu_rwsem::PercpuRwSem, RwSemaphore};
use quiescent::{board, smp};

fn misuse() {
    let kind = board::bootarg("misuse").expect("the rcu_misuse image needs misuse=<kind>");
    match kind {
        "qs-in-reader" => {
            let _g = rcu::read();
            rcu::rcu_quiescent_state();
        }
        "sync-in-reader" => {
            let _g = rcu::read();
            rcu::synchronize_rcu();
        }
        "idle-in-reader" => {
            assert!(smp::num_online() > 1, "needs two cores");
            smp::queue_work(1, || core::mem::forget(rcu::read()));
            // Core 1 panics when its idle loop reaches the quiescent point; wait for it.
            loop {
                quiescent::arch::wfe();
            }
        }
        "unbalanced-unlock" => rcu::rcu_read_unlock(),
        "use-after-free" => {
            let list = RcuList::new();
            list.add_head(2u64);
            list.add_head(1u64);
            let g = rcu::read();
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
            l.down_read();
            l.up_read();
            l.up_read();
        }
        "percpu-up-write-not-held" => {
            let l = PercpuRwSem::new().unwrap();
            l.up_write();
        }
        "percpu-down-write-in-reader" => {
            let l = PercpuRwSem::new().unwrap();
            let _g = rcu::read();
            l.down_write();
        }
        // Hazard 3: from an RCU callback, rcu_barrier would wait for its own core's marker,
        // queued behind the running callback (it used to hang).
        "rcu-barrier-in-callback" => {
            rcu::call_rcu(rcu::rcu_barrier);
            run_callbacks_until_caught();
        }
        // Hazard 3: a percpu_ref switch that must wait, from an RCU callback: the switch's own
        // callback is queued behind the running one (it used to hang).
        "percpu-ref-wait-in-callback" => {
            let r = PercpuRef::init(|_| {}, Flags::NONE).unwrap();
            rcu::call_rcu(move || r.switch_to_atomic_sync());
            run_callbacks_until_caught();
        }
        // Hazard 5: percpu_ref mode changes may pass quiescent points, so they are named inside
        // a read-side section even when nothing is pending (debug builds).
        "percpu-ref-switch-in-reader" => {
            let r = PercpuRef::init(|_| {}, Flags::INIT_ATOMIC).unwrap();
            let _g = rcu::read();
            r.switch_to_percpu();
        }
        "percpu-ref-reinit-in-reader" => {
            let r = PercpuRef::init(|_| {}, Flags::INIT_DEAD).unwrap();
            let _g = rcu::read();
            let _ = r.reinit();
        }
        // Blocking in an interrupt handler would wait on the code it interrupted.
        "synchronize-rcu-in-irq" => {
            assert!(smp::num_online() > 1, "needs two cores");
            ipi::call_function_single(1, rcu::synchronize_rcu);
        }
        // A read-side section where RCU does not watch (a quiescent wait's condition), and the
        // fast paths that rely on an implicit one (debug builds).
        "reader-in-quiescent-wait" => {
            rcu::wait_quiescent(|| {
                let _g = rcu::read();
                false
            });
        }
        "percpu-ref-get-in-quiescent-wait" => {
            let r = PercpuRef::init(|_| {}, Flags::NONE).unwrap();
            rcu::wait_quiescent(|| {
                r.get();
                false
            });
        }
        other => panic!("unknown misuse `{}`", other),
    }
    panic!("misuse `{}` was not detected", kind);
}

/// Core 0 runs its callbacks at quiescent points: pass them until the misuse is caught (a
/// panic) or 5 s have gone by.
fn run_callbacks_until_caught() {
    let t0 = quiescent::arch::counter();
    while quiescent::arch::ticks_to_ns(quiescent::arch::counter() - t0) < 5_000_000_000 {
        rcu::rcu_quiescent_state();
        rcu::gp_try_complete();
    }
}

quiescent::tests!(misuse);
