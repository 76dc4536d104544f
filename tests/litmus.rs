//! Litmus tests: the memory-ordering shapes the RCU barriers are about, run on two cores many
//! times. Under QEMU's multi-threaded TCG on an x86 host, guest loads and stores become host
//! loads and stores, so the host's store buffer shows through; `dmb ish` becomes `mfence`.
//!
//! Store buffering (SB) is the shape of barriers C/D (a core reporting a quiescent state vs an
//! updater starting a grace period), E (an idle core vs the completer), K (an interrupt handler
//! vs the interrupted `ctr` store) and O (a core publishing ONLINE vs a completer reading it):
//! each core stores its own flag, then loads the other's. Without a full barrier between the
//! two, both loads may miss both stores. (O itself cannot be shown here: its store is an atomic
//! read-modify-write, which TCG implements with a locked host instruction, a full barrier on
//! x86.)
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use quiescent::smp::{self, Ctx};
use quiescent::{arch, rcu};

const ROUNDS: u64 = 40_000;

#[repr(align(64))]
struct Line(AtomicU64);

struct Shared {
    x: Line,
    y: Line,
    /// Two-core rendezvous before each round.
    arrive: Line,
    /// Per round: what each side loaded.
    r1: Vec<AtomicU64>,
    r2: Vec<AtomicU64>,
}

/// Runs SB for ROUNDS rounds on two cores (with or without `smp_mb` between each core's store
/// and load) and returns how many rounds both loads missed the other core's store.
fn store_buffering(ctx: &mut Ctx, with_mb: bool) -> u64 {
    let cpus: Vec<usize> = smp::online_cpus().filter(|&c| c != 0).take(2).collect();
    let sh = Arc::new(Shared {
        x: Line(AtomicU64::new(0)),
        y: Line(AtomicU64::new(0)),
        arrive: Line(AtomicU64::new(0)),
        r1: (0..ROUNDS).map(|_| AtomicU64::new(0)).collect(),
        r2: (0..ROUNDS).map(|_| AtomicU64::new(0)).collect(),
    });
    let done = Arc::new(AtomicU64::new(0));
    for (side, &c) in cpus.iter().enumerate() {
        let (sh, done) = (sh.clone(), done.clone());
        smp::queue_work(c, move |_| {
            let (mine, theirs, out) = if side == 0 { (&sh.x, &sh.y, &sh.r1) } else { (&sh.y, &sh.x, &sh.r2) };
            for i in 1..=ROUNDS {
                sh.arrive.0.fetch_add(1, Ordering::AcqRel);
                while sh.arrive.0.load(Ordering::Acquire) < 2 * i {
                    core::hint::spin_loop();
                }
                mine.0.store(i, Ordering::Relaxed);
                if with_mb {
                    arch::smp_mb(); // the store before the load: the barrier under test
                }
                out[i as usize - 1].store(theirs.0.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            done.fetch_add(1, Ordering::Release);
        });
    }
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 60_000_000_000, "the litmus rounds did not finish");
        done.load(Ordering::Acquire) < 2
    });
    (1..=ROUNDS)
        .filter(|&i| {
            let (a, b) = (sh.r1[i as usize - 1].load(Ordering::Relaxed), sh.r2[i as usize - 1].load(Ordering::Relaxed));
            a < i && b < i
        })
        .count() as u64
}

fn store_buffering_never_with_smp_mb_between_store_and_load(ctx: &mut Ctx) {
    if smp::num_online() < 3 {
        return; // two cores besides core 0
    }
    let without = store_buffering(ctx, false);
    let with = store_buffering(ctx, true);
    defmt::info!(
        "store buffering: both loads missed both stores in {} of {} rounds without smp_mb, {} with",
        without,
        ROUNDS,
        with
    );
    assert_eq!(with, 0, "smp_mb did not order a store before a later load of another location");
}

quiescent::tests!(store_buffering_never_with_smp_mb_between_store_and_load);
