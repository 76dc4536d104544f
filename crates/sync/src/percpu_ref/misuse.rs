//! Named errors and misuse reports: [`PercpuRefError`] (returned), [`Misuse`] (reported by name,
//! counted per ref and globally), and the test hooks that read or set the per-core counters.

#[cfg(doc)]
use super::Flags;
use super::PercpuRef;
use crate::machine::{self, AtomicU64, Ordering, PercpuAllocError};

/// Errors returned by [`PercpuRef`] operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PercpuRefError {
    /// `init`: the per-cpu counter could not be allocated.
    Alloc(PercpuAllocError),
    /// `reinit`/`resurrect` on a ref created without [`Flags::ALLOW_REINIT`].
    ReinitNotAllowed,
    /// `reinit` on a ref whose count is not zero.
    ReinitNotZero,
    /// `resurrect` on a ref that is not dead.
    NotDead,
    /// `resurrect`/`reinit` after `exit` freed the per-cpu counters.
    Exited,
}

impl PercpuRefError {
    /// The error's name, as reported.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn text(self) -> &'static str {
        match self {
            PercpuRefError::Alloc(_) => "percpu_ref_init: per-cpu counter allocation failed",
            PercpuRefError::ReinitNotAllowed => "percpu_ref_reinit without ALLOW_REINIT",
            PercpuRefError::ReinitNotZero => "percpu_ref_reinit while not zero",
            PercpuRefError::NotDead => "percpu_ref_resurrect on a live ref",
            PercpuRefError::Exited => "percpu_ref_reinit after percpu_ref_exit",
        }
    }
}

impl core::fmt::Display for PercpuRefError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.text())
    }
}

/// The kinds of misuse that are reported (by name) and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// `kill` on a ref that is already dying or dead: warning, the call is ignored (its
    /// `confirm`, if any, is dropped without being called).
    KillTwice,
    /// A put that would take the count below zero: error; an atomic-mode put is refused, and one
    /// found when the per-core counters are folded leaves the ref dead at zero with `release`
    /// run once.
    PutBelowZero,
    /// A `get` on a ref whose count is zero (released): error; refused, so a later put cannot
    /// run `release` a second time.
    GetAfterRelease,
    /// `reinit`/`resurrect` without [`Flags::ALLOW_REINIT`]: warning, `Err` returned.
    ReinitNotAllowed,
    /// `reinit` while the count is not zero: warning, `Err` returned.
    ReinitNotZero,
    /// `resurrect` on a live ref: warning, `Err` returned.
    ResurrectNotDead,
    /// `switch_to_percpu` on a dying or released ref: warning, ignored.
    SwitchToPercpuDead,
    /// Percpu mode requested after `exit` freed the counters: warning; the ref stays atomic.
    UsedAfterExit,
    /// `exit` while a switch to atomic mode waits for its grace period: warning; the counters
    /// are freed by that switch once it has folded them.
    ExitWhileSwitching,
}

pub(super) const MISUSE_KINDS: usize = 9;

impl Misuse {
    /// The misuse's name, as reported.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn text(self) -> &'static str {
        match self {
            Misuse::KillTwice => "percpu_ref_kill called more than once",
            Misuse::PutBelowZero => "percpu_ref put below zero",
            Misuse::GetAfterRelease => "percpu_ref_get on a released ref",
            Misuse::ReinitNotAllowed => "percpu_ref_reinit without ALLOW_REINIT",
            Misuse::ReinitNotZero => "percpu_ref_reinit while not zero",
            Misuse::ResurrectNotDead => "percpu_ref_resurrect on a live ref",
            Misuse::SwitchToPercpuDead => "percpu_ref_switch_to_percpu on a dying or released ref (ignored)",
            Misuse::UsedAfterExit => "percpu_ref percpu mode requested after percpu_ref_exit",
            Misuse::ExitWhileSwitching => "percpu_ref_exit while switching to atomic mode",
        }
    }
}

machine::global! {
    /// Misuse reports of every ref so far.
    static MISUSE_TOTAL: AtomicU64 = AtomicU64::new(0);
}

/// Number of misuse reports (all refs, all kinds) since boot.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn misuse_reports() -> u64 {
    MISUSE_TOTAL.load(Ordering::Relaxed)
}

impl PercpuRef {
    #[cold]
    #[inline(never)]
    pub(super) fn report(&self, m: Misuse) {
        self.misuse[m as usize].fetch_add(1, Ordering::Relaxed);
        MISUSE_TOTAL.fetch_add(1, Ordering::Relaxed);
        let at = self as *const PercpuRef as usize;
        match m {
            Misuse::PutBelowZero | Misuse::GetAfterRelease => {
                crate::machine::error!("{} (percpu_ref {:#x})", m.text(), at)
            }
            _ => crate::machine::warn!("{} (percpu_ref {:#x})", m.text(), at),
        }
    }

    /// How many times misuse `m` was reported on this ref.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn misuse_count(&self, m: Misuse) -> u32 {
        self.misuse[m as usize].load(Ordering::Relaxed)
    }

    /// How many misuses of any kind were reported on this ref.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn misuses(&self) -> u32 {
        self.misuse.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Core `cpu`'s raw per-cpu counter, if the counters exist (tests, diagnostics).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn percpu_counter(&self, cpu: usize) -> Option<u64> {
        self.lock().pcpu.as_ref().map(|p| p.remote_get(cpu))
    }

    /// Overwrites core `cpu`'s per-cpu counter (tests use it to make counters wrap). Changes the
    /// count by the difference unless the caller compensates elsewhere.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    ///
    /// # Safety
    /// Core `cpu` must not be using this ref (or be about to) during the call.
    pub unsafe fn set_percpu_counter(&self, cpu: usize, v: u64) {
        let s = self.lock();
        if let Some(p) = s.pcpu.as_ref() {
            // SAFETY: exclusivity for core `cpu` is the caller's contract.
            unsafe { p.remote_set(cpu, v) };
        }
    }
}
