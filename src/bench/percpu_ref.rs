//! Benchmark section: percpu_ref's get+put fast path against a shared atomic counter, and the
//! per-core memory one ref costs.
//!
//! Under `-icount shift=0` (mode=icount) one instruction is 1 ns of virtual time, so the
//! per-pair figures are exact instruction counts (loop overhead subtracted by `per_iter`).

use super::common;
use alloc::sync::Arc;
use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};
use quiescent::percpu;
use quiescent::sync::percpu_ref::{Flags, PercpuRef};

const N: u64 = 200_000;

/// The measured loop, kept out of line under a plain symbol so it can be found with
/// `llvm-objdump -d` (`<bench_percpu_ref_get_put>` tail-calls the `common::per_iter` instance
/// that holds the loop). Measured: per pair one shared `mrs tpidr_el1` plus, for get and for put,
/// `ldr` (word), `tbnz` (ATOMIC), `ldr`/`add`/`str` (the restartable add): 11 instructions, no DMB.
#[inline(never)]
#[unsafe(no_mangle)]
fn bench_percpu_ref_get_put(r: &PercpuRef, n: u64) -> f64 {
    common::per_iter(n, || {
        r.get();
        r.put();
    })
}

/// The same loop on a shared atomic counter (`atomic_inc` + `atomic_dec_and_test`).
#[inline(never)]
#[unsafe(no_mangle)]
fn bench_atomic_get_put(c: &AtomicU64, n: u64) -> f64 {
    common::per_iter(n, || {
        // Relaxed increment; AcqRel decrement as a refcount's put would need.
        c.fetch_add(1, Ordering::Relaxed);
        black_box(c.fetch_sub(1, Ordering::AcqRel));
    })
}

/// `x` rounded to one decimal, as (integer part, tenths).
fn tenths(x: f64) -> (u64, u64) {
    let t = (x * 10.0 + 0.5) as u64;
    (t / 10, t % 10)
}

/// Runs the section (on core 0; the other cores idle).
pub fn run() {
    let mode = common::mode();
    let before = percpu::dyn_bytes_used();
    let r: Arc<PercpuRef> = match PercpuRef::init(|_| {}, Flags::NONE) {
        Ok(r) => r,
        Err(e) => {
            defmt::println!("bench percpu_ref: init failed: {}", e);
            return;
        }
    };
    let bytes = percpu::dyn_bytes_used() - before;
    // Warm up (first touch of the counter's line), then measure.
    bench_percpu_ref_get_put(&r, 1000);
    let pr = bench_percpu_ref_get_put(&r, N);
    // Under icount a counter nanosecond is one instruction; under mttcg it is real time.
    let unit = if mode == "icount" { "instructions/pair" } else { "ns/pair" };
    let (pi, pf) = tenths(pr);
    defmt::println!("bench percpu_ref get+put: {}.{} {=str} mode={=str}", pi, pf, unit, mode);
    let c = AtomicU64::new(1);
    bench_atomic_get_put(&c, 1000);
    let at = bench_atomic_get_put(&c, N);
    let (ai, af) = tenths(at);
    defmt::println!("bench shared AtomicU64 fetch_add+fetch_sub: {}.{} {=str} mode={=str}", ai, af, unit, mode);
    defmt::println!(
        "bench percpu_ref per-core memory: {} bytes per core (dynamic per-cpu area) mode={=str}",
        bytes,
        mode
    );
    r.kill();
    // Switch to atomic mode proves nothing was lost: after the grace period the count is 0.
    quiescent::rcu::rcu_barrier();
    defmt::println!("bench percpu_ref after kill: zero={=bool} mode={=str}", r.is_zero(), mode);
}
