//! Reader-writer locks: the read fast path (down_read + up_read) alone on one core, and every
//! core taking read locks at once (the shared-word path under contention).

use super::common::{mode, per_iter};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rwsem::RwSem;
use quiescent::sync::{RwSemaphore, SpinRw};
use quiescent::{arch, rcu, smp};

/// `down_read` + `up_read` (inlined into the measuring loop, as in real use).
#[inline(always)]
fn pair<L: RwSemaphore>(l: &L) {
    l.down_read();
    l.up_read();
}

/// Every core loops down_read/up_read for `ms`; returns ns per pair per core (counter time).
fn contended<L: RwSemaphore + 'static>(l: L, ms: u64) -> f64 {
    let l = Arc::new(l);
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let others: alloc::vec::Vec<usize> = smp::online_cpus().filter(|&c| c != 0).collect();
    let left = Arc::new(AtomicU64::new(others.len() as u64));
    for &c in &others {
        let (l2, s2, t2, left2) = (l.clone(), stop.clone(), total.clone(), left.clone());
        smp::queue_work(c, move || {
            let mut n = 0u64;
            while !s2.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    pair(&*l2);
                }
                n += 64;
                rcu::rcu_quiescent_state();
            }
            t2.fetch_add(n, Ordering::Relaxed);
            left2.fetch_sub(1, Ordering::Release);
        });
    }
    let t0 = arch::counter();
    let mut n = 0u64;
    while arch::ticks_to_ns(arch::counter() - t0) < ms * 1_000_000 {
        for _ in 0..64 {
            pair(&*l);
        }
        n += 64;
        rcu::rcu_quiescent_state();
    }
    let ns = arch::ticks_to_ns(arch::counter() - t0);
    stop.store(true, Ordering::Release);
    rcu::wait_quiescent(|| left.load(Ordering::Acquire) != 0);
    let pairs = n + total.load(Ordering::Relaxed);
    ns as f64 * smp::num_online() as f64 / pairs as f64
}

/// Runs the section.
pub fn run() {
    let m = mode();
    let p = PercpuRwSem::new().expect("per-cpu counts");
    let c = RwSem::new();
    let s = SpinRw::new();
    let fp = per_iter(100_000, || pair(&p));
    let fc = per_iter(100_000, || pair(&c));
    let fs = per_iter(100_000, || pair(&s));
    defmt::println!("bench percpu-rwsem down_read+up_read, one core: {=f64} ns/pair mode={=str}", fp, m);
    defmt::println!("bench rw_semaphore down_read+up_read, one core: {=f64} ns/pair mode={=str}", fc, m);
    defmt::println!("bench spin::RwLock read+unlock, one core: {=f64} ns/pair mode={=str}", fs, m);
    if smp::num_online() > 1 {
        let cp = contended(PercpuRwSem::new().expect("per-cpu counts"), 200);
        let cc = contended(RwSem::new(), 200);
        let cs = contended(SpinRw::new(), 200);
        defmt::println!(
            "bench percpu-rwsem read pair, all {} cores at once: {=f64} ns/pair/core mode={=str}",
            smp::num_online(),
            cp,
            m
        );
        defmt::println!(
            "bench rw_semaphore read pair, all {} cores at once: {=f64} ns/pair/core mode={=str}",
            smp::num_online(),
            cc,
            m
        );
        defmt::println!(
            "bench spin::RwLock read pair, all {} cores at once: {=f64} ns/pair/core mode={=str}",
            smp::num_online(),
            cs,
            m
        );
        defmt::println!(
            "bench   contended read path, rw_semaphore / percpu-rwsem: {=f64}x mode={=str}",
            cc / cp.max(0.001),
            m
        );
    }
}
