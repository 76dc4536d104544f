//! RCU on the host machine: grace periods against readers on other cores, typed pointers under
//! concurrent replacement, callbacks and `rcu_barrier` across cores, the stall detector.

use quiescent_hosted::{boot, spin_until, CORES};
use quiescent_platform::{cpu_id, host};
use quiescent_rcu::{self as rcu, cell::RcuCell, stats};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[test]
fn synchronize_rcu_waits_for_a_reader_on_another_core() {
    boot();
    let (inside, synced, synced_while_inside) =
        (AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false));
    host::on_each_cpu(|ctx| match cpu_id() {
        0 => {
            spin_until(|| inside.load(SeqCst));
            rcu::synchronize_rcu(ctx);
            synced.store(true, SeqCst);
        }
        1 => {
            let g = rcu::read(ctx);
            inside.store(true, SeqCst);
            // 50 ms without a quiescent point: the updater's grace period must not end meanwhile.
            let end = Instant::now() + Duration::from_millis(50);
            while Instant::now() < end {
                if synced.load(SeqCst) {
                    synced_while_inside.store(true, SeqCst);
                }
                quiescent_platform::cpu_relax();
            }
            drop(g);
        }
        _ => {}
    });
    assert!(synced.load(SeqCst), "synchronize_rcu returned");
    assert!(!synced_while_inside.load(SeqCst), "synchronize_rcu returned while a reader on core 1 was inside");
}

/// An object readers check: `magic` is poisoned when it is dropped, a grace period after it was
/// replaced.
struct Obj {
    magic: AtomicU64,
    gen: u64,
}

const LIVE: u64 = 0x11fe;
const DEAD: u64 = 0xdead;
static DROPPED: AtomicU64 = AtomicU64::new(0);

impl Drop for Obj {
    fn drop(&mut self) {
        self.magic.store(DEAD, SeqCst);
        DROPPED.fetch_add(1, SeqCst);
    }
}

#[test]
fn readers_never_see_a_replaced_object_freed() {
    boot();
    static CELL: RcuCell<Obj> = RcuCell::new();
    let stop = AtomicBool::new(false);
    let (reads, bad) = (AtomicU64::new(0), AtomicU64::new(0));
    let replaced = host::on_each_cpu(|ctx| {
        if cpu_id() == 0 {
            // The updater: 300 ms of replacements, freed through callbacks (the Retired dropped)
            // or after a grace period waited for here.
            let end = Instant::now() + Duration::from_millis(300);
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                if let Some(old) = CELL.replace(Obj { magic: AtomicU64::new(LIVE), gen: n }) {
                    if n.is_multiple_of(2) {
                        drop(old);
                    } else {
                        old.free_after_sync(ctx);
                    }
                }
                rcu::rcu_quiescent_state(ctx);
            }
            stop.store(true, SeqCst);
            n
        } else {
            // Readers: every object they reach is live, and generations never go back.
            let mut last = 0;
            while !stop.load(SeqCst) {
                for _ in 0..64 {
                    let g = rcu::read(ctx);
                    if let Some(o) = CELL.read(&g) {
                        if o.magic.load(SeqCst) != LIVE || o.gen < last {
                            bad.fetch_add(1, SeqCst);
                        }
                        last = o.gen;
                    }
                    reads.fetch_add(1, SeqCst);
                }
                rcu::rcu_quiescent_state(ctx);
            }
            0
        }
    })[0];
    host::on_cpu(0, |ctx| {
        drop(CELL.take());
        rcu::rcu_barrier(ctx);
    });
    assert_eq!(bad.load(SeqCst), 0, "readers saw a freed object or a generation going back");
    assert!(replaced > 10 && reads.load(SeqCst) > 100, "{} replacements, {} reads", replaced, reads.load(SeqCst));
    assert_eq!(DROPPED.load(SeqCst), replaced, "every replaced object freed once, after rcu_barrier");
}

#[test]
fn rcu_barrier_waits_for_the_callbacks_of_every_core() {
    boot();
    static RAN: AtomicU64 = AtomicU64::new(0);
    const PER_CORE: u64 = 1000;
    let busy = AtomicBool::new(true);
    let queued = AtomicU64::new(0);
    host::on_each_cpu(|ctx| {
        for _ in 0..PER_CORE {
            rcu::call_rcu(|_| {
                RAN.fetch_add(1, SeqCst);
            });
        }
        queued.fetch_add(1, SeqCst);
        if cpu_id() == 0 {
            spin_until(|| queued.load(SeqCst) == CORES as u64); // every core's, before the call
                                                                // The other cores stay busy in a work item: rcu_barrier reaches them through
                                                                // call_function_single, taken at their next interrupt point (a spin), and their
                                                                // callbacks run at their quiescent states.
            rcu::rcu_barrier(ctx);
            let ran = RAN.load(SeqCst);
            busy.store(false, SeqCst);
            assert_eq!(ran, PER_CORE * CORES as u64, "rcu_barrier returned before every callback ran");
        } else {
            while busy.load(SeqCst) {
                rcu::rcu_quiescent_state(ctx);
                quiescent_platform::cpu_relax();
            }
        }
    });
}

#[test]
fn a_stalled_core_is_named() {
    boot();
    stats::set_stall_timeout_ms(100);
    let before = stats::stalls().0;
    let (stalling, done) = (AtomicBool::new(false), AtomicBool::new(false));
    host::on_each_cpu(|ctx| match cpu_id() {
        0 => {
            spin_until(|| stalling.load(SeqCst));
            rcu::synchronize_rcu(ctx); // waits for core 2, which stalls 400 ms
            done.store(true, SeqCst);
        }
        2 => {
            stalling.store(true, SeqCst);
            let end = Instant::now() + Duration::from_millis(400);
            spin_until(|| Instant::now() >= end);
        }
        _ => {}
    });
    stats::set_stall_timeout_ms(21_000);
    let (stalls, last) = stats::stalls();
    assert!(done.load(SeqCst));
    assert!(stalls > before, "no stall reported");
    assert_eq!(last, Some(2), "the stall named the wrong core");
}
