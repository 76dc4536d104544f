//! A panic that unwinds out of a blocking wait's condition must not leave the core in RCU's
//! extended quiescent state (`ctr == 0`): safe code that catches it goes on using the core's
//! context as a reader, which grace periods must wait for.

use quiescent_hosted::{boot, hold_for, spin_until, SetOnDrop};
use quiescent_platform::{cpu_id, host, wait_event};
use quiescent_rcu as rcu;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};

/// Core 1 catches a panic from a wait condition, then holds a read section for 50 ms while
/// core 0 runs `synchronize_rcu`: the grace period must not end inside that section.
fn reader_after_caught_panic(wait: fn(&mut rcu::Ctx)) {
    boot();
    let (inside, synced, synced_while_inside) =
        (AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false));
    let watching_after = AtomicBool::new(true);
    let _ = host::on_each_cpu(|ctx| match cpu_id() {
        0 => {
            spin_until(|| inside.load(SeqCst));
            rcu::synchronize_rcu(ctx);
            synced.store(true, SeqCst);
        }
        1 => {
            let _unblock = SetOnDrop(&inside); // core 0 waits for it, also if this core panics
            let caught = catch_unwind(AssertUnwindSafe(|| wait(ctx)));
            assert!(caught.is_err());
            watching_after.store(rcu::rcu_is_watching(), SeqCst);
            if cfg!(debug_assertions) && !rcu::rcu_is_watching() {
                // Debug builds would name the broken state at `rcu::read` ("not watching").
                inside.store(true, SeqCst);
                return;
            }
            // A reader again, as far as the types say (the guard borrows `ctx`).
            let g = rcu::read(ctx);
            inside.store(true, SeqCst);
            hold_for(50, &synced, &synced_while_inside);
            drop(g);
        }
        _ => {}
    });
    assert!(!synced_while_inside.load(SeqCst), "synchronize_rcu returned while core 1 was inside a read section");
    assert!(watching_after.load(SeqCst), "RCU does not watch core 1 after the panic was caught (ctr == 0)");
}

#[test]
fn wait_quiescent_condition_that_panics() {
    reader_after_caught_panic(|ctx| rcu::wait_quiescent(ctx, || panic!("condition panics")));
}

#[test]
fn wait_event_condition_that_panics() {
    reader_after_caught_panic(|ctx| {
        let calls = AtomicU32::new(0);
        // The first call is made outside the extended quiescent state; the second inside.
        wait_event(ctx, || if calls.fetch_add(1, SeqCst) == 0 { false } else { panic!("condition panics") });
    });
}
