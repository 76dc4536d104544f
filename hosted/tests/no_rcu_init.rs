//! A machine booted without `rcu::init` (safe: `host::boot(2, || {})`) has no core reporting
//! quiescent states, so a grace period there would wait for no reader: RCU refuses to start one,
//! by name, from a core and from any other thread.

use quiescent_hosted::panics_with;
use quiescent_platform::host;
use quiescent_rcu as rcu;

#[test]
fn rcu_refuses_to_run_without_rcu_init() {
    host::boot(2, || {}); // no RCU registered
    const NAMED: &str = "RCU used before rcu::init";
    panics_with("synchronize_rcu on a core", NAMED, || host::on_cpu(1, rcu::synchronize_rcu));
    panics_with("start_poll_synchronize_rcu off the cores", NAMED, || {
        rcu::start_poll_synchronize_rcu();
    });
    panics_with("call_rcu on a core", NAMED, || host::on_cpu(0, |_| rcu::call_rcu(|_| {})));
}
