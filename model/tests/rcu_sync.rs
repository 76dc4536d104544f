//! rcu_sync (`src/sync/rcu_sync.rs`) under loom: its state under concurrent enter/exit.
use quiescent_model::machine::spawn_cpu;
use quiescent_model::sync::rcu_sync::RcuSync;
use quiescent_model::{check, rcu};
use std::sync::Arc;

/// Two writers on cores 0 and 1 enter and exit concurrently; while either is inside, readers
/// are off the fast path; once both have left and the callbacks have run, it is idle again.
/// The exit callbacks run after the writers (`rcu::barrier`), not concurrently with them.
fn two_writers() {
    rcu::init();
    let rs = Arc::new(RcuSync::new());
    let r2 = rs.clone();
    let t = spawn_cpu(1, move || {
        r2.enter();
        assert!(!r2.is_idle(), "idle while a writer is inside");
        r2.exit(&r2);
    });
    rs.enter();
    assert!(!rs.is_idle(), "idle while a writer is inside");
    rs.exit(&rs);
    t.join().unwrap();
    rcu::barrier();
    assert!(rs.is_idle(), "not idle a grace period after the last exit");
}

#[test]
fn concurrent_enter_exit_returns_to_idle() {
    check(2, two_writers); // preemption bound 2
}
