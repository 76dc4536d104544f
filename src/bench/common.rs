//! Shared helpers for the benchmarks.

use quiescent::{arch, board};

/// `icount` when the runner passed `bench-mode=icount` (QEMU `-icount shift=0`), else `mttcg`.
pub fn mode() -> &'static str {
    match board::bootarg("bench-mode") {
        Some("icount") => "icount",
        _ => "mttcg",
    }
}

/// Counter-time nanoseconds taken by `f` (under icount: instructions executed).
pub fn time_ns(f: impl FnOnce()) -> u64 {
    let t0 = arch::counter();
    f();
    arch::ticks_to_ns(arch::counter() - t0)
}

/// Per-iteration cost of `body` run `n` times, minus the cost of an empty loop of `n`
/// iterations (so loop overhead is not counted).
pub fn per_iter(n: u64, mut body: impl FnMut()) -> f64 {
    let empty = time_ns(|| {
        for i in 0..n {
            core::hint::black_box(i);
        }
    });
    let full = time_ns(|| {
        for i in 0..n {
            core::hint::black_box(i);
            body();
        }
    });
    full.saturating_sub(empty) as f64 / n as f64
}
