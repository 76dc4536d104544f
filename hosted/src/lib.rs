//! The primitives on [`quiescent_platform::host`], the third consumer of the crates beside the
//! firmware and the loom model: each test file boots a machine of [`CORES`] threads with RCU and
//! runs the primitives on them, in debug and release builds.

use quiescent_platform::host;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

/// Cores of the machine each test binary boots (more than this host's CPUs is fine: a core that
/// spins yields its CPU).
pub const CORES: usize = 4;

/// Boots the machine with RCU registered (once per test binary; later calls find it running).
pub fn boot() {
    host::boot(CORES, || {
        // SAFETY: `host::boot` runs this once, on core 0, with interrupts masked, before the other
        // cores start: `rcu::init`'s contract.
        unsafe { quiescent_rcu::init(Default::default()) }
    });
}

/// Spins (taking interrupts, yielding the host CPU) until `cond` holds.
pub fn spin_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        quiescent_platform::cpu_relax();
    }
}

/// Spins for `ms` milliseconds (taking interrupts where the core may), setting `seen` if `flag`
/// is set meanwhile: a reader that must not see an updater finish while it is inside.
pub fn hold_for(ms: u64, flag: &AtomicBool, seen: &AtomicBool) {
    let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    while std::time::Instant::now() < end {
        if flag.load(SeqCst) {
            seen.store(true, SeqCst);
        }
        quiescent_platform::cpu_relax();
    }
}

/// The text of a caught panic (`catch_unwind`'s error).
pub fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Runs `f`, which must panic with a message containing `expected`.
pub fn panics_with(what: &str, expected: &str, f: impl FnOnce()) {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err(what);
    let msg = panic_message(&*e);
    assert!(msg.contains(expected), "{what}: panicked with {msg:?}, not {expected:?}");
}

/// Sets its flag, and wakes the cores waiting in `wait_event`, when dropped: also when the core
/// holding it panics, so the cores waiting for that flag finish their work items and the panic
/// reaches the test (`host::on_each_cpu` waits for every core) instead of a hang.
pub struct SetOnDrop<'a>(pub &'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
        quiescent_platform::wake_up_all();
    }
}
