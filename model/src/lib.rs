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

/// The files whose barriers the negative controls name, by their path from the repository root.
/// The labels are the `// A: ...` comments on the barriers (see `machine::omit_barrier`).
const SOURCES: &[(&str, &str)] = &[
    ("crates/sync/src/percpu_rwsem.rs", include_str!("../../crates/sync/src/percpu_rwsem.rs")),
    ("crates/sync/src/rcu_sync.rs", include_str!("../../crates/sync/src/rcu_sync.rs")),
    ("crates/rcu/src/qs.rs", include_str!("../../crates/rcu/src/qs.rs")),
    ("crates/rcu/src/gp.rs", include_str!("../../crates/rcu/src/gp.rs")),
    ("crates/rcu/src/callbacks.rs", include_str!("../../crates/rcu/src/callbacks.rs")),
    ("crates/rcu/src/read.rs", include_str!("../../crates/rcu/src/read.rs")),
    ("crates/rcu/src/tree.rs", include_str!("../../crates/rcu/src/tree.rs")),
    ("crates/sync/src/percpu_ref/mod.rs", include_str!("../../crates/sync/src/percpu_ref/mod.rs")),
    ("crates/sync/src/percpu_ref/mode.rs", include_str!("../../crates/sync/src/percpu_ref/mode.rs")),
];

/// Runs `f` under loom with `bound` preemptions per execution; returns the executions explored.
pub fn check(bound: usize, f: impl Fn() + Sync + Send + 'static) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    machine::set_sources(SOURCES);
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
    machine::set_sources(SOURCES);
    let grace_period = label == "G" || label.starts_with("G@");
    if grace_period && (file.starts_with("crates/sync/src/percpu_ref/") || file == "crates/sync/src/rcu_sync.rs") {
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
