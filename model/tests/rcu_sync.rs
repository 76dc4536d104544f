//! rcu_sync (`crates/sync/src/rcu_sync.rs`) under loom: its state under concurrent enter/exit.
//!
//! Each modelled core's thread makes its context (`Ctx`) at its start ([`core_ctx`]).
use loom::cell::UnsafeCell;
use quiescent_model::machine::{spawn_cpu, Ctx};
use quiescent_model::sync::rcu_sync::RcuSync;
use quiescent_model::{check, rcu};
use std::rc::Rc;
use std::sync::Arc;

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

/// Two writers on cores 0 and 1 enter and exit concurrently; while either is inside, readers
/// are off the fast path; once both have left and the callbacks have run, it is idle again.
/// The exit callbacks run after the writers (`rcu::barrier`), not concurrently with them.
fn two_writers() {
    let ctx = &mut boot();
    let rs = Arc::new(RcuSync::new());
    let r2 = rs.clone();
    let t = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        r2.enter(ctx);
        assert!(!r2.is_idle(), "idle while a writer is inside");
        r2.exit(&r2, |s| s);
    });
    rs.enter(ctx);
    assert!(!rs.is_idle(), "idle while a writer is inside");
    rs.exit(&rs, |s| s);
    t.join().unwrap();
    rcu::barrier(ctx);
    assert!(rs.is_idle(), "not idle a grace period after the last exit");
}

#[test]
fn concurrent_enter_exit_returns_to_idle() {
    check(2, two_writers); // preemption bound 2
}

/// Core 0 waits for a core's thread as a blocking wait (an RCU extended quiescent state), so
/// the grace periods other cores wait for can end meanwhile.
fn join(_ctx: &mut Ctx, t: loom::thread::JoinHandle<()>) {
    // SAFETY: a blocking wait (it takes the context `&mut`): this core holds nothing read under
    // RCU and runs no reader until the eqs_exit below.
    unsafe { rcu::eqs_enter() };
    t.join().unwrap();
    // SAFETY: pairs with the eqs_enter above.
    unsafe { rcu::eqs_exit() };
}

/// The exit callback (the transition back to idle a grace period after the last exit) runs
/// while another writer enters. Core 0 is a writer that enters, writes, exits and then runs
/// the RCU callbacks (its own exit's among them); core 1 is a second writer that enters,
/// writes (its own cell) and exits meanwhile; core 2 is a reader that, after a quiescent point, reads on its
/// fast path if it finds the rcu_sync idle. A writer never finds it idle while inside, and a
/// fast-path read never overlaps a writer's write (the loom cell; what orders them is the
/// grace period of the writer that found it idle). Idle again at the end.
fn exit_callback_vs_enter() {
    let ctx = &mut boot();
    let rs = Arc::new(RcuSync::new());
    // One cell per writer: rcu_sync does not exclude writers from each other.
    let data = Rc::new([UnsafeCell::new(0u32), UnsafeCell::new(0u32)]);
    let (r2, d2) = (rs.clone(), data.clone());
    let reader = spawn_cpu(2, move || {
        let ctx = &mut core_ctx();
        rcu::quiescent_point(ctx);
        if r2.is_idle() {
            for c in d2.iter() {
                // SAFETY: loom checks this access against the writers'.
                let v = c.with(|p| unsafe { *p });
                assert!(v <= 1);
            }
        }
    });
    let (r1, d1) = (rs.clone(), data.clone());
    let writer = spawn_cpu(1, move || {
        let ctx = &mut core_ctx();
        r1.enter(ctx);
        assert!(!r1.is_idle(), "idle while a writer is inside");
        // SAFETY: as the reader's.
        d1[1].with_mut(|p| unsafe { *p += 1 });
        r1.exit(&r1, |s| s);
    });
    rs.enter(ctx);
    assert!(!rs.is_idle(), "idle while a writer is inside");
    // SAFETY: as the reader's.
    data[0].with_mut(|p| unsafe { *p += 1 });
    rs.exit(&rs, |s| s);
    rcu::barrier(ctx);
    join(ctx, writer);
    join(ctx, reader);
    rcu::barrier(ctx);
    assert!(rs.is_idle(), "not idle a grace period after the last exit");
}

#[test]
fn exit_callback_concurrent_with_enter() {
    check(2, exit_callback_vs_enter); // preemption bound 2
}
