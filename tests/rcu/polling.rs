//! Polling cookies: `get_state_synchronize_rcu`, `poll_state_synchronize_rcu`,
//! `cond_synchronize_rcu`, `start_poll_synchronize_rcu`.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use quiescent::rcu;
use quiescent::smp::{self, Ctx};
use quiescent::test::{others, spin_on, wait_flag};

/// Linux's polling cookies: `get_state_synchronize_rcu`'s cookie completes only once a grace
/// period covers the readers running when it was taken (pushes and other cores' requests
/// cannot end it earlier), `cond_synchronize_rcu` waits for exactly that, and
/// `get_completed_synchronize_rcu` always reads as completed.
pub(super) fn polling_cookies_complete_only_after_their_readers(ctx: &mut Ctx) {
    let done = rcu::get_completed_synchronize_rcu();
    assert!(rcu::poll_state_synchronize_rcu(done), "the always-completed cookie");
    rcu::cond_synchronize_rcu(ctx, done);
    let o = others();
    if o.len() < 2 {
        return;
    }
    let (reader, waiter) = (o[0], o[1]);
    let release = spin_on(ctx, reader, true, "the reader entering its section");
    let cookie = rcu::get_state_synchronize_rcu();
    let waited = Arc::new(AtomicBool::new(false));
    let w2 = waited.clone();
    smp::queue_work(waiter, move |ctx| {
        rcu::cond_synchronize_rcu(ctx, cookie);
        assert!(rcu::poll_state_synchronize_rcu(cookie), "cond_synchronize_rcu returned before its grace period");
        w2.store(true, Ordering::Release);
    });
    for _ in 0..200 {
        rcu::stats::gp_try_complete();
        rcu::start_poll_synchronize_rcu();
        assert!(!rcu::poll_state_synchronize_rcu(cookie), "the cookie completed with its reader still inside");
        assert!(!waited.load(Ordering::Acquire), "cond_synchronize_rcu returned with the reader still inside");
        rcu::rcu_quiescent_state(ctx);
    }
    release.store(true, Ordering::Release);
    wait_flag(ctx, &waited, "cond_synchronize_rcu after the reader left");
    assert!(rcu::poll_state_synchronize_rcu(cookie));
}

/// Cookies taken across many grace periods: each later than the last, each completed once a
/// grace period after it has, and then `cond_synchronize_rcu` on any of them returns at once.
pub(super) fn polling_cookies_across_many_grace_periods(ctx: &mut Ctx) {
    let mut cookies = Vec::new();
    for _ in 0..32 {
        let c = rcu::get_state_synchronize_rcu();
        assert!(cookies.last().is_none_or(|&l| c > l), "cookie {} not after the last one", c);
        cookies.push(c);
        rcu::synchronize_rcu(ctx);
        assert!(rcu::poll_state_synchronize_rcu(c), "cookie {} not completed by the grace period after it", c);
    }
    for &c in &cookies {
        assert!(rcu::poll_state_synchronize_rcu(c), "old cookie {} reads as not completed", c);
        rcu::cond_synchronize_rcu(ctx, c);
    }
    let newest = rcu::get_state_synchronize_rcu();
    assert!(newest > *cookies.last().unwrap_or(&0));
    rcu::cond_synchronize_rcu(ctx, newest);
    assert!(rcu::poll_state_synchronize_rcu(newest));
}
