//! The combining tree: the leaf size asked for, and every leaf holding a grace period open.

use core::sync::atomic::Ordering;
use quiescent::arch;
use quiescent::rcu;
use quiescent::smp::Ctx;
use quiescent::test::{others, spin_on};
use quiescent::{smp, test};

/// The combining tree has the leaf size the command line asked for (`rcu_leaf=N`, else 16; at
/// least what fits this run's cores in 64 leaves), so the runs with small leaves really
/// spread their cores over several leaves.
pub(super) fn tree_has_the_leaf_size_asked_for(_ctx: &mut Ctx) {
    let asked = quiescent::board::bootarg("rcu_leaf").map(|v| v.parse::<usize>().expect("rcu_leaf=N"));
    let min = smp::num_possible().div_ceil(64).max(1);
    assert_eq!(rcu::stats::leaf_size(), asked.unwrap_or(16).clamp(min, 64), "rcu leaf size");
    if asked.is_some_and(|a| a >= min) {
        let leaves = smp::online_cpus().map(|c| c / rcu::stats::leaf_size()).max().unwrap_or(0) + 1;
        assert!(smp::num_online() <= 1 || leaves > 1, "the run asked for small leaves but has one leaf");
    }
}

/// Each core in turn holds a grace period open from inside a read-side section: with small
/// leaves every leaf, and the root's bit for it, must keep the grace period from ending.
pub(super) fn grace_period_waits_for_a_reader_on_every_core(ctx: &mut Ctx) {
    for c in others() {
        let release = spin_on(ctx, c, true, "the reader");
        let cookie = rcu::start_poll_synchronize_rcu();
        let t0 = arch::counter();
        // 20 ms of quiescent waiting (other cores report and sleep meanwhile).
        rcu::wait_quiescent(ctx, || {
            assert!(!rcu::poll_state_synchronize_rcu(cookie), "a grace period ended while core {} was a reader", c);
            arch::ticks_to_ns(arch::counter() - t0) < 20_000_000
        });
        release.store(true, Ordering::Release);
        test::wait_until(ctx, 5000, "the grace period after the reader", || rcu::poll_state_synchronize_rcu(cookie));
    }
}
