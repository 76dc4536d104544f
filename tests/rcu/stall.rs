//! The stall detector: silent without a stall, names the core that holds up a grace period
//! (also when it is the only core whose tick runs), once per stall.

use core::sync::atomic::Ordering;
use quiescent::arch;
use quiescent::rcu;
use quiescent::smp::Ctx;
use quiescent::test::{others, spin_on};

pub(super) fn no_stall_reported_so_far(_ctx: &mut Ctx) {
    assert_eq!(rcu::stats::stalls().0, 0, "the stall detector fired without a stall");
}

pub(super) fn stall_detector_names_a_core_that_holds_up_a_grace_period(ctx: &mut Ctx) {
    let o = others();
    if o.is_empty() {
        return;
    }
    // The first and the last of the others: with small leaves, in different leaves.
    stall_named(ctx, o[0]);
    if o.len() > 1 {
        stall_named(ctx, o[o.len() - 1]);
    }
}

fn stall_named(ctx: &mut Ctx, c: usize) {
    rcu::stats::set_stall_timeout_ms(150);
    let release = spin_on(ctx, c, true, "the stalling reader");
    let (stalls, _) = rcu::stats::stalls();
    let cookie = rcu::start_poll_synchronize_rcu();
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "no stall reported for core {}", c);
        rcu::stats::stalls().0 == stalls
    });
    assert_eq!(rcu::stats::stalls().1, Some(c), "the stall report named the wrong core");
    assert!(!rcu::poll_state_synchronize_rcu(cookie), "the grace period ended while the core stalled it");
    // Once per stall: it stays at one report while the stall lasts.
    let t1 = arch::counter();
    rcu::wait_quiescent(ctx, || arch::ticks_to_ns(arch::counter() - t1) < 300_000_000);
    assert_eq!(rcu::stats::stalls().0, stalls + 1, "the same stall was reported twice");
    release.store(true, Ordering::Release);
    stall_ends(ctx, cookie);
}

/// After a stall is released: the grace period it held up completes (within 5 s), and the
/// stall timeout goes back to its default.
fn stall_ends(ctx: &mut Ctx, cookie: u64) {
    let t = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(
            arch::ticks_to_ns(arch::counter() - t) < 5_000_000_000,
            "the grace period never completed after the stall"
        );
        !rcu::poll_state_synchronize_rcu(cookie)
    });
    rcu::stats::set_stall_timeout_ms(3000);
}

/// The stalling core is the one whose tick runs (this one, in a reader with interrupts on),
/// while every other core sleeps in its idle loop and so takes no tick: it must name itself
/// (with no PC: it cannot interrupt itself for one), not wait for another core's scan.
pub(super) fn stall_on_the_only_ticking_core_is_named(ctx: &mut Ctx) {
    rcu::stats::set_stall_timeout_ms(150);
    let (stalls, _) = rcu::stats::stalls();
    let cookie = rcu::start_poll_synchronize_rcu();
    let t0 = arch::counter();
    {
        let _g = rcu::read(ctx);
        while rcu::stats::stalls().0 == stalls {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "no stall reported for core 0");
            core::hint::spin_loop();
        }
    }
    assert_eq!(rcu::stats::stalls().1, Some(0), "the stall report named the wrong core");
    stall_ends(ctx, cookie);
}
