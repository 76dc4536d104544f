//! RCU on the host machine: grace periods against readers on other cores, typed pointers under
//! concurrent replacement, callbacks and `rcu_barrier` across cores, the stall detector.

use quiescent_hosted::{boot, hold_for, spin_until, SetOnDrop, CORES};
use quiescent_platform::{cpu_id, host, ipi};
use quiescent_rcu::{self as rcu, cell::RcuCell, stats};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
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
            let _unblock = SetOnDrop(&inside); // core 0 waits for it
            let g = rcu::read(ctx);
            inside.store(true, SeqCst);
            // 50 ms without a quiescent point: the updater's grace period must not end meanwhile.
            hold_for(50, &synced, &synced_while_inside);
            drop(g);
        }
        _ => {}
    });
    assert!(synced.load(SeqCst), "synchronize_rcu returned");
    assert!(!synced_while_inside.load(SeqCst), "synchronize_rcu returned while a reader on core 1 was inside");
}

/// Every core in turn holds a read-side section while the next core waits for a grace period,
/// with `synchronize_rcu` and with `call_rcu`: neither may end before the reader leaves. The
/// reader's `ctr` is older than the grace period the updater needs (it took its snapshot after
/// seeing the reader inside), so each round can fail: a grace period that leaves out any one
/// core (`--cfg quiescent_inject="gp-skip-core"` leaves out the last) fails its round.
#[test]
fn grace_periods_wait_for_a_reader_on_every_core() {
    boot();
    for reader in 0..CORES {
        let updater = (reader + 1) % CORES;
        for with_callback in [false, true] {
            let (inside, ended, ended_inside) =
                (AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false));
            host::on_each_cpu(|ctx| {
                if cpu_id() == reader {
                    let _unblock = SetOnDrop(&inside); // the updater waits for it
                    let g = rcu::read(ctx);
                    inside.store(true, SeqCst);
                    hold_for(30, &ended, &ended_inside);
                    drop(g);
                } else if cpu_id() == updater {
                    spin_until(|| inside.load(SeqCst));
                    if with_callback {
                        let ran = Arc::new(AtomicBool::new(false));
                        let r = ran.clone();
                        rcu::call_rcu(move |_| r.store(true, SeqCst));
                        rcu::wait_quiescent(ctx, || !ran.load(SeqCst)); // runs this core's callbacks
                    } else {
                        rcu::synchronize_rcu(ctx);
                    }
                    ended.store(true, SeqCst);
                }
            });
            let how = if with_callback { "call_rcu's callback ran" } else { "synchronize_rcu returned" };
            assert!(ended.load(SeqCst), "{how}: never (reader core {reader}, updater core {updater})");
            assert!(
                !ended_inside.load(SeqCst),
                "{how} while a reader on core {reader} was inside (updater core {updater})"
            );
        }
    }
}

/// An interrupt handler that lands on a core in a blocking wait (an extended quiescent state) is
/// a reader: `irq_enter` makes grace periods wait for it (barrier I) until `irq_exit`. Core 1
/// waits in `wait_event`; core 0's `call_function_single` runs there (the host takes it at the
/// wait's `wfe`, with core 1's `ctr` at 0) and holds a read-side section while core 2 waits for
/// a grace period that starts inside it. `--cfg quiescent_inject="irq-eqs"` fails here.
#[test]
fn an_interrupt_on_a_waiting_core_is_a_reader() {
    boot();
    static WAITING: AtomicBool = AtomicBool::new(false);
    static INSIDE: AtomicBool = AtomicBool::new(false);
    static ENDED: AtomicBool = AtomicBool::new(false);
    static ENDED_INSIDE: AtomicBool = AtomicBool::new(false);
    static RELEASE: AtomicBool = AtomicBool::new(false);
    host::on_each_cpu(|ctx| match cpu_id() {
        0 => {
            // Core 1's wait ends once the call is over, and core 2's once the handler is inside
            // (or the call failed).
            let (_release, _unblock) = (SetOnDrop(&RELEASE), SetOnDrop(&INSIDE));
            spin_until(|| WAITING.load(SeqCst));
            ipi::call_function_single(ctx, 1, |a| {
                let g = rcu::read(a);
                INSIDE.store(true, SeqCst);
                hold_for(30, &ENDED, &ENDED_INSIDE);
                drop(g);
            });
        }
        1 => {
            WAITING.store(true, SeqCst);
            quiescent_platform::wait_event(ctx, || RELEASE.load(SeqCst));
        }
        2 => {
            spin_until(|| INSIDE.load(SeqCst));
            rcu::synchronize_rcu(ctx);
            ENDED.store(true, SeqCst);
        }
        _ => {}
    });
    assert!(ENDED.load(SeqCst), "synchronize_rcu returned");
    assert!(!ENDED_INSIDE.load(SeqCst), "a grace period ended under a handler's read-side section on a waiting core");
}

/// `rcu_barrier` reaches cores blocked in a wait (the call is taken at their `wfe`) and waits
/// for their callbacks, which run inside the wait; each takes a few ms, so a barrier that
/// returned after its own core's callbacks only would find them unfinished. Core 0 holds the
/// grace period (no quiescent point) until it calls `rcu_barrier`, so no callback has run
/// before: the count it checks after is the barrier's doing.
#[test]
fn rcu_barrier_waits_for_slow_callbacks_on_blocked_cores() {
    boot();
    static RAN: AtomicU64 = AtomicU64::new(0);
    const PER_CORE: u64 = 10;
    let (go, queued, release) = (AtomicBool::new(false), AtomicU64::new(0), AtomicBool::new(false));
    let before = host::on_each_cpu(|ctx| {
        if cpu_id() == 0 {
            let _release = SetOnDrop(&release); // the other cores wait for it
            go.store(true, SeqCst); // after this core's last quiescent point
            spin_until(|| queued.load(SeqCst) == CORES as u64 - 1);
            let before = RAN.load(SeqCst);
            rcu::rcu_barrier(ctx);
            Some((before, RAN.load(SeqCst)))
        } else {
            // Queued after core 0 set `go`: the grace period they need starts after core 0's
            // last quiescent state, so it waits for core 0.
            spin_until(|| go.load(SeqCst) || release.load(SeqCst));
            for _ in 0..PER_CORE {
                rcu::call_rcu(|_| {
                    let end = Instant::now() + Duration::from_millis(3);
                    while Instant::now() < end {
                        std::hint::spin_loop();
                    }
                    RAN.fetch_add(1, SeqCst);
                });
            }
            queued.fetch_add(1, SeqCst);
            quiescent_platform::wait_event(ctx, || release.load(SeqCst));
            None
        }
    })[0];
    let (before, after) = before.expect("core 0's result");
    assert_eq!(before, 0, "callbacks ran before rcu_barrier, while core 0 held their grace period");
    assert_eq!(after, PER_CORE * (CORES as u64 - 1), "rcu_barrier returned before every core's callbacks ran");
}

/// A panic in a `call_function_single` closure is its caller's (raised again there, as on
/// the firmware a failed assertion in the handler would stop the run), not a hang; and the
/// target core, and the caller's own core for a call to itself, take interrupts afterwards.
#[test]
fn a_panic_in_a_call_fails_its_caller() {
    boot();
    for target in [1, 0] {
        let r = std::panic::catch_unwind(|| {
            host::on_cpu(0, |ctx| ipi::call_function_single(ctx, target, |_| -> u32 { panic!("a call that fails") }))
        });
        let msg = r.expect_err("the call's panic reaches its caller");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"a call that fails"));
    }
    // Both cores still take calls (from each other) and every core still reaches rcu_barrier.
    assert_eq!(host::on_cpu(1, |ctx| ipi::call_function_single(ctx, 0, |_| 7)), 7);
    assert_eq!(host::on_cpu(0, |ctx| ipi::call_function_single(ctx, 1, |_| 8)), 8);
    host::on_cpu(2, rcu::rcu_barrier);
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
            // The readers run until it is set.
            let _stop = SetOnDrop(&stop);
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
    let finished = AtomicBool::new(false);
    let queued = AtomicU64::new(0);
    host::on_each_cpu(|ctx| {
        for _ in 0..PER_CORE {
            rcu::call_rcu(|_| {
                RAN.fetch_add(1, SeqCst);
            });
        }
        queued.fetch_add(1, SeqCst);
        if cpu_id() == 0 {
            // The other cores stay busy until it is set.
            let _finish = SetOnDrop(&finished);
            // Every core's callbacks are queued before the call. The other cores stay busy in a
            // work item: rcu_barrier reaches them through call_function_single, taken at their
            // next interrupt point (a spin), and their callbacks run at their quiescent states.
            spin_until(|| queued.load(SeqCst) == CORES as u64);
            rcu::rcu_barrier(ctx);
            let ran = RAN.load(SeqCst);
            assert_eq!(ran, PER_CORE * CORES as u64, "rcu_barrier returned before every callback ran");
        } else {
            while !finished.load(SeqCst) {
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
