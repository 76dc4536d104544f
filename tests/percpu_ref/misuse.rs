//! Misuse: reported by name, counted, and the ref stays usable or cleanly dead.

use super::{new_ref, settle, wait_until};
use alloc::vec::Vec;
use quiescent::percpu::{self, PercpuAllocError, PercpuBox};
use quiescent::smp::Ctx;
use quiescent::sync::percpu_ref::{self as pref, Flags, Misuse, PercpuRef, PercpuRefError};

pub(super) fn kill_twice_is_reported_and_ignored(ctx: &mut Ctx) {
    let reports = pref::misuse_reports();
    let (r, p) = new_ref(Flags::NONE);
    r.get(ctx); // a holder: a second put of the initial reference would release under it
    r.kill(ctx);
    r.kill_and_confirm(ctx, p.confirm());
    assert_eq!(r.misuse_count(Misuse::KillTwice), 1, "second kill not reported");
    assert_eq!(Misuse::KillTwice.text(), "percpu_ref_kill called more than once");
    assert!(pref::misuse_reports() > reports, "global misuse counter unchanged");
    settle(ctx);
    assert_eq!(p.releases(), 0, "the second kill dropped the initial reference again");
    assert_eq!(p.confirms(), 0, "the ignored kill's confirm ran");
    assert_eq!(r.count(), Some(1));
    r.put(ctx);
    assert_eq!(p.releases(), 1);
    settle(ctx);
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 1, "other misuse reported");
}

pub(super) fn put_below_zero_is_reported_and_leaves_the_ref_dead(ctx: &mut Ctx) {
    assert_eq!(Misuse::PutBelowZero.text(), "percpu_ref put below zero");
    // Atomic mode: the put is refused.
    let (r, p) = new_ref(Flags::INIT_ATOMIC);
    r.put(ctx); // the initial reference: zero, released
    assert_eq!(p.releases(), 1);
    r.put(ctx);
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1, "atomic-mode put below zero not reported");
    assert_eq!(r.count(), Some(0), "count changed by a refused put");
    r.get(ctx);
    assert_eq!(r.misuse_count(Misuse::GetAfterRelease), 1, "get on a released ref not reported");
    assert_eq!(r.count(), Some(0), "a get revived a released ref");
    r.put(ctx);
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 2);
    assert!(r.is_zero() && !r.tryget(ctx));
    assert_eq!(p.releases(), 1, "release ran twice");

    // Percpu mode: only the fold can see it; the ref ends dead at zero, released once.
    let (r, p) = new_ref(Flags::NONE);
    r.put(ctx); // one put too many (the kill drops the initial reference)
    r.kill(ctx);
    wait_until(ctx, "release", || p.releases() >= 1);
    settle(ctx);
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1, "percpu-mode put below zero not reported at the fold");
    assert_eq!(p.releases(), 1, "release did not run exactly once");
    assert_eq!(r.count(), Some(0), "not cleanly dead at zero");
    assert!(!r.tryget(ctx) && !r.tryget_live(ctx));

    // A put after the release of a killed ref.
    let (r, p) = new_ref(Flags::NONE);
    r.kill(ctx);
    wait_until(ctx, "release", || p.releases() == 1);
    r.put(ctx);
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1);
    settle(ctx);
    assert_eq!(p.releases(), 1);
    assert_eq!(r.count(), Some(0));
}

pub(super) fn reinit_misuse_returns_named_errors(ctx: &mut Ctx) {
    assert_eq!(PercpuRefError::ReinitNotAllowed.text(), "percpu_ref_reinit without ALLOW_REINIT");
    assert_eq!(PercpuRefError::ReinitNotZero.text(), "percpu_ref_reinit while not zero");
    // Without ALLOW_REINIT.
    let (r, p) = new_ref(Flags::NONE);
    r.kill(ctx);
    wait_until(ctx, "release", || p.releases() == 1);
    assert_eq!(r.reinit(ctx), Err(PercpuRefError::ReinitNotAllowed));
    assert_eq!(r.resurrect(ctx), Err(PercpuRefError::ReinitNotAllowed));
    assert_eq!(r.misuse_count(Misuse::ReinitNotAllowed), 2, "reinit/resurrect without ALLOW_REINIT not reported");
    assert!(r.is_zero() && r.is_dying(), "a refused reinit changed the ref");
    assert_eq!(r.percpu_counter(0), None, "the kill of a ref without ALLOW_REINIT kept its per-cpu counters");
    // With ALLOW_REINIT but not at zero.
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    assert_eq!(r.reinit(ctx), Err(PercpuRefError::ReinitNotZero));
    assert_eq!(r.misuse_count(Misuse::ReinitNotZero), 1);
    assert_eq!(r.resurrect(ctx), Err(PercpuRefError::NotDead));
    assert_eq!(r.misuse_count(Misuse::ResurrectNotDead), 1);
    // Still usable.
    assert!(r.is_percpu() && !r.is_dying());
    assert!(r.tryget_live(ctx));
    r.put(ctx);
    r.switch_to_atomic_sync(ctx);
    assert_eq!(r.count(), Some(1), "a refused reinit changed the count");
    r.get(ctx);
    r.kill(ctx);
    assert_eq!(r.reinit(ctx), Err(PercpuRefError::ReinitNotZero), "reinit while a reference is held");
    r.put(ctx);
    assert_eq!(p.releases(), 1);
    r.reinit(ctx).expect("reinit at zero");
    r.kill(ctx);
    assert_eq!(p.releases(), 2);
    assert_eq!(r.misuses(), 3);
}

pub(super) fn switch_to_percpu_on_a_dying_ref_is_ignored(ctx: &mut Ctx) {
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    r.get(ctx);
    r.kill_and_confirm(ctx, p.confirm());
    wait_until(ctx, "kill confirmation", || p.confirms() == 1);
    r.switch_to_percpu(ctx);
    assert_eq!(r.misuse_count(Misuse::SwitchToPercpuDead), 1, "switch_to_percpu on a dying ref not reported");
    assert!(!r.is_percpu() && r.is_dying() && !r.tryget_live(ctx), "switch_to_percpu revived a dying ref");
    assert_eq!(r.count(), Some(1));
    r.put(ctx);
    assert_eq!(p.releases(), 1);
    r.switch_to_percpu(ctx);
    assert_eq!(r.misuse_count(Misuse::SwitchToPercpuDead), 2, "switch_to_percpu on a released ref not reported");
    assert!(r.is_zero() && !r.is_percpu());
    r.reinit(ctx).expect("reinit");
    assert!(r.is_percpu(), "reinit goes back to percpu mode");
    r.kill(ctx);
    wait_until(ctx, "release", || p.releases() == 2);
    assert_eq!(r.misuses(), 2);
}

pub(super) fn init_fails_cleanly_when_percpu_space_runs_out(ctx: &mut Ctx) {
    let mut hog = Vec::new();
    loop {
        match PercpuBox::new(0u32) {
            Ok(b) => hog.push(b),
            Err(e) => {
                assert_eq!(e, PercpuAllocError::OutOfSpace);
                break;
            }
        }
        assert!(hog.len() <= percpu::PERCPU_DYN_SIZE / 4, "the per-cpu area never ran out");
    }
    let e = PercpuRef::init(|_| {}, Flags::NONE).err();
    assert_eq!(e, Some(PercpuRefError::Alloc(PercpuAllocError::OutOfSpace)), "init without per-cpu space");
    drop(hog);
    let (r, p) = new_ref(Flags::NONE);
    r.kill(ctx);
    wait_until(ctx, "release", || p.releases() == 1);
}

pub(super) fn exit_frees_the_percpu_counters(ctx: &mut Ctx) {
    settle(ctx); // as in resurrect_and_reinit_cycles
    let before = percpu::dyn_bytes_used();
    let (r, p) = new_ref(Flags::NONE);
    assert_eq!(percpu::dyn_bytes_used(), before + pref::PERCPU_BYTES_PER_CPU, "one ref, one u64 per core");
    r.get_many(ctx, 2);
    r.exit();
    // Freed one grace period after the exit (see exit_keeps_the_counter_until_a_grace_period).
    settle(ctx);
    assert_eq!(percpu::dyn_bytes_used(), before, "exit did not free the counters");
    assert!(!r.is_percpu() && r.is_dying());
    assert_eq!(r.count(), Some(3), "exit lost the per-core counts");
    r.put_many(ctx, 3);
    assert_eq!(p.releases(), 1);
    // Without ALLOW_REINIT the kill frees them once the counts are folded.
    let (r, p) = new_ref(Flags::NONE);
    r.kill(ctx);
    wait_until(ctx, "release", || p.releases() == 1);
    assert_eq!(percpu::dyn_bytes_used(), before, "the kill of a ref without ALLOW_REINIT kept its counters");
    // With ALLOW_REINIT they stay until exit, here called from release as Linux users do.
    let r = PercpuRef::init(|r| r.exit(), Flags::ALLOW_REINIT).expect("init");
    r.kill(ctx);
    wait_until(ctx, "exit from release", || percpu::dyn_bytes_used() == before);
    assert!(r.is_zero());
    // exit during the kill's switch: reported, and the switch frees the counters.
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    r.kill(ctx);
    r.exit();
    assert_eq!(r.misuse_count(Misuse::ExitWhileSwitching), 1, "exit while switching not reported");
    wait_until(ctx, "release", || p.releases() == 1);
    settle(ctx);
    assert_eq!(percpu::dyn_bytes_used(), before, "counters leaked after exit during a switch");
    assert_eq!(r.count(), Some(0));
    assert_eq!(r.reinit(ctx), Err(PercpuRefError::Exited), "reinit after exit");
}
