//! loom models of quiescent's primitives: a second consumer of the crates, built on the
//! platform's loom machine (`quiescent-platform` with `--cfg loom`, set by `.cargo/config.toml`
//! here), as a kernel builds on its own machine. The models are the tests in `tests/`.
//!
//! Each modelled core's thread makes its context (`Ctx`) at its start; interrupt handlers and
//! RCU callbacks get an `&AtomicCtx`. `quiescent-sync` is built against an idealised RCU
//! (`--cfg quiescent_ideal_rcu`: [`rcu`], `quiescent_platform::ideal_rcu`), not the real one:
//! the percpu-rwsem, rcu_sync and percpu_ref models check `sync`'s own barriers, and the stand-in
//! keeps their state space small (one read-modify-write per RCU event instead of the
//! grace-period machine's per-core loads, lock and fences) and free of SeqCst fences, which loom
//! synchronises in the order it runs them (with the real RCU under them, its fences would order
//! the sync models' threads and hide barrier B of percpu_rwsem). The real RCU
//! (`quiescent-rcu`) is checked by its own models (`tests/rcu.rs`).
pub use quiescent_platform as machine;
pub use quiescent_platform::ideal_rcu as rcu;
pub use quiescent_sync as sync;

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

/// Runs `f` under loom with the barrier labelled `label` in `file` left out (the label the code
/// gives it: `smp_mb!("A@rcu_qs")`, `ordering!(Acquire, "Q")`, `grace_period!("G", ...)`), and
/// returns whether loom found a failing execution (a negative control expects it to).
pub fn check_fails_without(
    file: &'static str,
    label: &'static str,
    bound: usize,
    f: impl Fn() + Sync + Send + 'static,
) -> bool {
    // G labels a grace period (`grace_period!`), every other label a barrier.
    if label == "G" || label.starts_with("G@") {
        machine::omit_grace_period(file, label);
    } else {
        machine::omit_barrier(file, label);
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bound, f)));
    let reached = machine::omitted_reached();
    machine::restore_barriers();
    match r {
        Ok(n) => {
            assert!(reached, "no run reached a barrier labelled {label} in {file}: the label names nothing");
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
