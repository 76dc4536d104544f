//! Misuse: reported by name, counted, and the ref stays usable or cleanly dead.

use super::{new_ref, settle, wait_until};
use alloc::vec::Vec;
use quiescent::percpu::{self, PerCpuAllocError, PerCpuBox};
use quiescent::sync::percpu_ref::{self as pref, Flags, Misuse, PercpuRef, PercpuRefError};

pub(super) fn kill_twice_is_reported_and_ignored() {
    let reports = pref::misuse_reports();
    let (r, p) = new_ref(Flags::NONE);
    r.get(); // a holder: a second put of the initial reference would release under it
    r.kill();
    r.kill_and_confirm(p.confirm());
    assert_eq!(r.misuse_count(Misuse::KillTwice), 1, "second kill not reported");
    assert_eq!(Misuse::KillTwice.text(), "percpu_ref_kill called more than once");
    assert!(pref::misuse_reports() > reports, "global misuse counter unchanged");
    settle();
    assert_eq!(p.releases(), 0, "the second kill dropped the initial reference again");
    assert_eq!(p.confirms(), 0, "the ignored kill's confirm ran");
    assert_eq!(r.count(), Some(1));
    r.put();
    assert_eq!(p.releases(), 1);
    settle();
    assert_eq!(p.releases(), 1);
    assert_eq!(r.misuses(), 1, "other misuse reported");
}

pub(super) fn put_below_zero_is_reported_and_leaves_the_ref_dead() {
    assert_eq!(Misuse::PutBelowZero.text(), "percpu_ref put below zero");
    // Atomic mode: the put is refused.
    let (r, p) = new_ref(Flags::INIT_ATOMIC);
    r.put(); // the initial reference: zero, released
    assert_eq!(p.releases(), 1);
    r.put();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1, "atomic-mode put below zero not reported");
    assert_eq!(r.count(), Some(0), "count changed by a refused put");
    r.get();
    assert_eq!(r.misuse_count(Misuse::GetAfterRelease), 1, "get on a released ref not reported");
    assert_eq!(r.count(), Some(0), "a get revived a released ref");
    r.put();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 2);
    assert!(r.is_zero() && !r.tryget());
    assert_eq!(p.releases(), 1, "release ran twice");

    // Percpu mode: only the fold can see it; the ref ends dead at zero, released once.
    let (r, p) = new_ref(Flags::NONE);
    r.put(); // one put too many (the kill drops the initial reference)
    r.kill();
    wait_until("release", || p.releases() >= 1);
    settle();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1, "percpu-mode put below zero not reported at the fold");
    assert_eq!(p.releases(), 1, "release did not run exactly once");
    assert_eq!(r.count(), Some(0), "not cleanly dead at zero");
    assert!(!r.tryget() && !r.tryget_live());

    // A put after the release of a killed ref.
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
    r.put();
    assert_eq!(r.misuse_count(Misuse::PutBelowZero), 1);
    settle();
    assert_eq!(p.releases(), 1);
    assert_eq!(r.count(), Some(0));
}

pub(super) fn reinit_misuse_returns_named_errors() {
    assert_eq!(PercpuRefError::ReinitNotAllowed.text(), "percpu_ref_reinit without ALLOW_REINIT");
    assert_eq!(PercpuRefError::ReinitNotZero.text(), "percpu_ref_reinit while not zero");
    // Without ALLOW_REINIT.
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
    assert_eq!(r.reinit(), Err(PercpuRefError::ReinitNotAllowed));
    assert_eq!(r.resurrect(), Err(PercpuRefError::ReinitNotAllowed));
    assert_eq!(r.misuse_count(Misuse::ReinitNotAllowed), 2, "reinit/resurrect without ALLOW_REINIT not reported");
    assert!(r.is_zero() && r.is_dying(), "a refused reinit changed the ref");
    assert_eq!(r.percpu_counter(0), None, "the kill of a ref without ALLOW_REINIT kept its per-cpu counters");
    // With ALLOW_REINIT but not at zero.
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    assert_eq!(r.reinit(), Err(PercpuRefError::ReinitNotZero));
    assert_eq!(r.misuse_count(Misuse::ReinitNotZero), 1);
    assert_eq!(r.resurrect(), Err(PercpuRefError::NotDead));
    assert_eq!(r.misuse_count(Misuse::ResurrectNotDead), 1);
    // Still usable.
    assert!(r.is_percpu() && !r.is_dying());
    assert!(r.tryget_live());
    r.put();
    r.switch_to_atomic_sync();
    assert_eq!(r.count(), Some(1), "a refused reinit changed the count");
    r.get();
    r.kill();
    assert_eq!(r.reinit(), Err(PercpuRefError::ReinitNotZero), "reinit while a reference is held");
    r.put();
    assert_eq!(p.releases(), 1);
    r.reinit().expect("reinit at zero");
    r.kill();
    assert_eq!(p.releases(), 2);
    assert_eq!(r.misuses(), 3);
}

pub(super) fn switch_to_percpu_on_a_dying_ref_is_ignored() {
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    r.get();
    r.kill_and_confirm(p.confirm());
    wait_until("kill confirmation", || p.confirms() == 1);
    r.switch_to_percpu();
    assert_eq!(r.misuse_count(Misuse::SwitchToPercpuDead), 1, "switch_to_percpu on a dying ref not reported");
    assert!(!r.is_percpu() && r.is_dying() && !r.tryget_live(), "switch_to_percpu revived a dying ref");
    assert_eq!(r.count(), Some(1));
    r.put();
    assert_eq!(p.releases(), 1);
    r.switch_to_percpu();
    assert_eq!(r.misuse_count(Misuse::SwitchToPercpuDead), 2, "switch_to_percpu on a released ref not reported");
    assert!(r.is_zero() && !r.is_percpu());
    r.reinit().expect("reinit");
    assert!(r.is_percpu(), "reinit goes back to percpu mode");
    r.kill();
    wait_until("release", || p.releases() == 2);
    assert_eq!(r.misuses(), 2);
}

pub(super) fn init_fails_cleanly_when_percpu_space_runs_out() {
    let mut hog = Vec::new();
    loop {
        match PerCpuBox::new(0u32) {
            Ok(b) => hog.push(b),
            Err(e) => {
                assert_eq!(e, PerCpuAllocError::OutOfSpace);
                break;
            }
        }
        assert!(hog.len() <= percpu::PERCPU_DYN_SIZE / 4, "the per-cpu area never ran out");
    }
    let e = PercpuRef::init(|_| {}, Flags::NONE).err();
    assert_eq!(e, Some(PercpuRefError::Alloc(PerCpuAllocError::OutOfSpace)), "init without per-cpu space");
    drop(hog);
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
}

pub(super) fn exit_frees_the_percpu_counters() {
    settle(); // as in resurrect_and_reinit_cycles
    let before = percpu::dyn_bytes_used();
    let (r, p) = new_ref(Flags::NONE);
    assert_eq!(percpu::dyn_bytes_used(), before + pref::PERCPU_BYTES_PER_CPU, "one ref, one u32 per core");
    r.get_many(2);
    r.exit();
    assert_eq!(percpu::dyn_bytes_used(), before, "exit did not free the counters");
    assert!(!r.is_percpu() && r.is_dying());
    assert_eq!(r.count(), Some(3), "exit lost the per-core counts");
    r.put_many(3);
    assert_eq!(p.releases(), 1);
    // Without ALLOW_REINIT the kill frees them once the counts are folded.
    let (r, p) = new_ref(Flags::NONE);
    r.kill();
    wait_until("release", || p.releases() == 1);
    assert_eq!(percpu::dyn_bytes_used(), before, "the kill of a ref without ALLOW_REINIT kept its counters");
    // With ALLOW_REINIT they stay until exit, here called from release as Linux users do.
    let r = PercpuRef::init(|r| r.exit(), Flags::ALLOW_REINIT).expect("init");
    r.kill();
    wait_until("exit from release", || percpu::dyn_bytes_used() == before);
    assert!(r.is_zero());
    // exit during the kill's switch: reported, and the switch frees the counters.
    let (r, p) = new_ref(Flags::ALLOW_REINIT);
    r.kill();
    r.exit();
    assert_eq!(r.misuse_count(Misuse::ExitWhileSwitching), 1, "exit while switching not reported");
    wait_until("release", || p.releases() == 1);
    settle();
    assert_eq!(percpu::dyn_bytes_used(), before, "counters leaked after exit during a switch");
    assert_eq!(r.count(), Some(0));
    assert_eq!(r.reinit(), Err(PercpuRefError::Exited), "reinit after exit");
}
