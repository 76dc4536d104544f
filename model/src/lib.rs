//! loom models of the firmware's primitives, compiled from the firmware's own source files.
//!
//! `sync` below is `src/sync/percpu_rwsem.rs`, `src/sync/rcu_sync.rs`,
//! `src/sync/rw_semaphore.rs` and `src/sync/percpu_ref/` themselves (by `#[path]`), and [`firmware_rcu`] is `src/rcu/`
//! itself; their `crate::machine` is this crate's [`machine`] (loom). The models are the tests
//! in `tests/`. The execution contexts are the firmware's own (`src/smp/ctx.rs`, as
//! `machine::{Ctx, AtomicCtx}`): each modelled core's thread makes its `Ctx` at its start, and
//! interrupt handlers and RCU callbacks get an `&AtomicCtx`.
//!
//! `sync`'s `crate::rcu` is [`rcu`], an idealised stand-in, not the firmware's RCU: the
//! percpu-rwsem, rcu_sync and percpu_ref models check `sync`'s own barriers, and the stand-in keeps their
//! state space small (one read-modify-write per RCU event instead of the grace-period machine's
//! per-core loads, lock and fences) and free of SeqCst fences, which loom synchronises in the
//! order it runs them (with the firmware's RCU under them, its fences would order the sync
//! models' threads and hide barrier B of percpu_rwsem). The firmware's RCU is checked by its
//! own models (`tests/rcu.rs`).
extern crate alloc;

#[path = "../../src/rcu/mod.rs"]
pub mod firmware_rcu;
pub mod machine;
pub mod rcu;
pub mod sync;

/// Runs `f` under loom with `bound` preemptions per execution; returns the executions explored.
pub fn check(bound: usize, f: impl Fn() + Sync + Send + 'static) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b.check(move || {
        r.fetch_add(1, Ordering::Relaxed);
        f()
    });
    let n = runs.load(Ordering::Relaxed);
    println!("loom: preemption bound {bound}, {n} executions");
    n
}

/// Runs `f` under loom with the barrier labelled `label` in `file` left out, and returns whether
/// loom found a failing execution (a negative control expects it to).
pub fn check_fails_without(
    file: &'static str,
    label: &'static str,
    bound: usize,
    f: impl Fn() + Sync + Send + 'static,
) -> bool {
    let grace_period = label == "G" || label.starts_with("G@");
    if grace_period && (file.starts_with("src/sync/percpu_ref/") || file == "src/sync/rcu_sync.rs") {
        machine::omit_grace_period(file, label); // a call_rcu or synchronize_rcu, not a barrier
    } else {
        machine::omit_barrier(file, label);
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bound, f)));
    machine::restore_barriers();
    match r {
        Ok(n) => {
            println!("loom: no failure without {label} in {file} ({n} executions)");
            false
        }
        Err(_) => true,
    }
}

/// Holds `T` and drops it, except while the thread unwinds from a failure loom found: then it
/// is leaked, so that a destructor's own check (`RcuSync`'s "dropped with a writer inside")
/// does not panic during the unwinding and abort the test process.
pub struct ForgetOnPanic<T>(core::mem::ManuallyDrop<T>);

impl<T> ForgetOnPanic<T> {
    /// Wraps `v`.
    pub fn new(v: T) -> Self {
        ForgetOnPanic(core::mem::ManuallyDrop::new(v))
    }
}

impl<T> core::ops::Deref for ForgetOnPanic<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for ForgetOnPanic<T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: dropped once, here; never used after.
            unsafe { core::mem::ManuallyDrop::drop(&mut self.0) }
        }
    }
}
