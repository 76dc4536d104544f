//! Review (soundness): `host::boot` is safe and takes any `init`; a machine booted without
//! `rcu::init` (as the platform's own doc example does, `host::boot(4, || {})`) runs RCU's safe
//! API with no idle hooks: every core's `ctr` stays 0, so grace periods wait for no reader.

use quiescent_hosted::spin_until;
use quiescent_platform::{cpu_id, host};
use quiescent_rcu as rcu;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[test]
#[ignore = "review finding: fails until RCU refuses to run without rcu::init (or boot is unsafe)"]
fn synchronize_rcu_waits_for_readers_on_a_machine_booted_without_rcu_init() {
    host::boot(2, || {}); // safe: no RCU registered
    let (inside, synced, synced_while_inside, watching) =
        (AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(true));
    host::on_each_cpu(|ctx| match cpu_id() {
        0 => {
            spin_until(|| inside.load(SeqCst));
            rcu::synchronize_rcu(ctx);
            synced.store(true, SeqCst);
        }
        _ => {
            watching.store(rcu::rcu_is_watching(), SeqCst);
            if cfg!(debug_assertions) && !rcu::rcu_is_watching() {
                inside.store(true, SeqCst); // debug builds name it at rcu::read
                return;
            }
            let g = rcu::read(ctx);
            inside.store(true, SeqCst);
            let end = Instant::now() + Duration::from_millis(50);
            while Instant::now() < end {
                if synced.load(SeqCst) {
                    synced_while_inside.store(true, SeqCst);
                }
                quiescent_platform::cpu_relax();
            }
            drop(g);
        }
    });
    assert!(!synced_while_inside.load(SeqCst), "synchronize_rcu returned while core 1 was inside a read section");
    assert!(watching.load(SeqCst), "RCU does not watch a core that runs a work item");
}
