//! RCU: read-side cost, synchronize_rcu with idle cores, and the building blocks' costs.

use super::common::{mode, per_iter};
use quiescent::{arch, rcu, smp};

/// Runs the section.
pub fn run() {
    let m = mode();
    for &c in smp::online_cpus().collect::<alloc::vec::Vec<_>>().iter().filter(|&&c| c != 0) {
        smp::call_on(c, || ());
    }
    let lock_unlock = per_iter(100_000, || {
        let g = rcu::read();
        core::hint::black_box(&g);
        drop(g);
    });
    defmt::println!("bench rcu_read_lock+unlock: {=f64} ns/op mode={=str}", lock_unlock, m);
    // 21 batches of 100: the median batch, and the mean over all. Under mttcg the mean also
    // catches the rare batch where a core's tick (or the host descheduling a vCPU) holds a
    // grace period up; the median shows the common case.
    let mut batches: alloc::vec::Vec<f64> = (0..21).map(|_| per_iter(100, rcu::synchronize_rcu)).collect();
    let mean = batches.iter().sum::<f64>() / batches.len() as f64;
    batches.sort_by(|a, b| a.partial_cmp(b).unwrap_or(core::cmp::Ordering::Equal));
    defmt::println!(
        "bench synchronize_rcu, other cores idle: {=f64} ns/op median, {=f64} ns/op mean mode={=str}",
        batches[10],
        mean,
        m
    );
    let qs = per_iter(100_000, rcu::rcu_quiescent_state);
    defmt::println!("bench rcu_quiescent_state, no grace period pending: {=f64} ns/op mode={=str}", qs, m);
    let mb = per_iter(100_000, arch::smp_mb);
    defmt::println!("bench   (dmb ish: {=f64} ns/op mode={=str})", mb, m);
    let ctr = per_iter(100_000, || {
        core::hint::black_box(arch::counter_relaxed());
    });
    defmt::println!("bench   (CNTVCT read: {=f64} ns/op mode={=str})", ctr, m);
    let l = spin::Mutex::new(0u64);
    let lk = per_iter(100_000, || *l.lock() += 1);
    defmt::println!("bench   (uncontended spin lock+unlock: {=f64} ns/op mode={=str})", lk, m);
}
