//! rcu_sync (`src/sync/rcu_sync.rs`) under loom: its state under concurrent enter/exit.
use loom::cell::UnsafeCell;
use quiescent_model::machine::spawn_cpu;
use quiescent_model::sync::rcu_sync::RcuSync;
use quiescent_model::{check, rcu};
use std::rc::Rc;
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

/// Core 0 waits for a core's thread as a blocking wait (an RCU extended quiescent state), so
/// the grace periods other cores wait for can end meanwhile.
fn join(t: loom::thread::JoinHandle<()>) {
    rcu::eqs_enter();
    t.join().unwrap();
    rcu::eqs_exit();
}

/// The exit callback (the transition back to idle a grace period after the last exit) runs
/// while another writer enters. Core 0 is a writer that enters, writes, exits and then runs
/// the RCU callbacks (its own exit's among them); core 1 is a second writer that enters,
/// writes (its own cell) and exits meanwhile; core 2 is a reader that, after a quiescent point, reads on its
/// fast path if it finds the rcu_sync idle. A writer never finds it idle while inside, and a
/// fast-path read never overlaps a writer's write (the loom cell; what orders them is the
/// grace period of the writer that found it idle). Idle again at the end.
fn exit_callback_vs_enter() {
    rcu::init();
    let rs = Arc::new(RcuSync::new());
    // One cell per writer: rcu_sync does not exclude writers from each other.
    let data = Rc::new([UnsafeCell::new(0u32), UnsafeCell::new(0u32)]);
    let (r2, d2) = (rs.clone(), data.clone());
    let reader = spawn_cpu(2, move || {
        rcu::quiescent_point();
        if r2.is_idle() {
            for c in d2.iter() {
                let v = c.with(|p| unsafe { *p });
                assert!(v <= 1);
            }
        }
    });
    let (r1, d1) = (rs.clone(), data.clone());
    let writer = spawn_cpu(1, move || {
        r1.enter();
        assert!(!r1.is_idle(), "idle while a writer is inside");
        d1[1].with_mut(|p| unsafe { *p += 1 });
        r1.exit(&r1);
    });
    rs.enter();
    assert!(!rs.is_idle(), "idle while a writer is inside");
    data[0].with_mut(|p| unsafe { *p += 1 });
    rs.exit(&rs);
    rcu::barrier();
    join(writer);
    join(reader);
    rcu::barrier();
    assert!(rs.is_idle(), "not idle a grace period after the last exit");
}

#[test]
fn exit_callback_concurrent_with_enter() {
    check(2, exit_callback_vs_enter); // preemption bound 2
}
