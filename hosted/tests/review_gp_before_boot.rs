//! Review: `rcu::start_poll_synchronize_rcu()` (safe, "any context") on the test thread before
//! `host::boot` stores STARTED = 2, then panics in the tree's set-up (core 0 is online from the
//! start but has no per-cpu area yet). The grace period it started has no tree and never
//! completes: after boot every `synchronize_rcu` waits for ever. A hang, not undefined behaviour.

use quiescent_hosted::boot;
use quiescent_platform::host;
use quiescent_rcu as rcu;
use std::sync::mpsc;
use std::time::Duration;

#[test]
#[ignore = "review finding: fails until a grace period cannot be started before boot (or survives it)"]
fn a_grace_period_requested_before_boot_does_not_wedge_rcu() {
    let early = std::panic::catch_unwind(rcu::start_poll_synchronize_rcu);
    boot();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        host::on_cpu(1, rcu::synchronize_rcu);
        tx.send(()).unwrap();
    });
    let done = rx.recv_timeout(Duration::from_secs(2)).is_ok();
    assert!(
        done,
        "synchronize_rcu did not return in 2 s (early request {}; started {}, completed {})",
        if early.is_ok() { "returned" } else { "panicked" },
        rcu::stats::started(),
        rcu::stats::completed()
    );
}
