//! The mode changes of [`PercpuRef`]: kill, the switches between percpu and atomic mode,
//! resurrect/reinit and exit, serialised by the ref's lock, and the RCU callback that folds the
//! per-core counters into the atomic count after a switch's grace period (labels G, R, F, S in
//! the module docs).

#[cfg(doc)]
use super::Flags;
use super::{Confirm, Misuse, PercpuRef, PercpuRefError, ATOMIC, DEAD, PERCPU_COUNT_BIAS};
use crate::machine::{self, AtomicCtx, Ctx, MutexGuard, Ordering, PercpuBox};
use crate::rcu;
use alloc::boxed::Box;

/// State only the mode-changing paths touch, under the ref's lock.
pub(super) struct Slow {
    /// The per-cpu counters (`None` after `exit`, or after the kill of a ref without
    /// ALLOW_REINIT). The word holds their template address for the fast path.
    pub(super) pcpu: Option<PercpuBox<u64>>,
    /// The confirmation the pending switch calls after its grace period.
    pub(super) confirm: Option<Confirm>,
    /// Stay in atomic mode across kill/resurrect (`switch_to_atomic`, INIT_ATOMIC).
    pub(super) force_atomic: bool,
    /// `exit` was called during a switch: the switch frees the counters when done.
    pub(super) exit_pending: bool,
}

/// The lock guard; fields drop in order, so the lock is released before interrupts are
/// unmasked again.
pub(super) struct Locked<'a> {
    g: MutexGuard<'a, Slow>,
    _irq: machine::IrqGuard,
}

impl core::ops::Deref for Locked<'_> {
    type Target = Slow;
    fn deref(&self) -> &Slow {
        &self.g
    }
}

impl core::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Slow {
        &mut self.g
    }
}

impl PercpuRef {
    pub(super) fn lock(&self) -> Locked<'_> {
        let irq = machine::IrqGuard::new();
        Locked { g: self.slow.lock(), _irq: irq }
    }

    /// Takes the lock with no switch to atomic mode pending, waiting for a pending one first
    /// (Linux's `wait_event_lock_irq(percpu_ref_switch_waitq, !confirm_switch, ...)` in
    /// `__percpu_ref_switch_mode`). Every mode change that may wait goes through here. `what`
    /// names the caller in the errors for blocking in an interrupt handler or inside a read-side
    /// section (debug builds), checked even when nothing is pending so a misplaced call is named
    /// without waiting for the rare run in which a switch is pending; waiting from an RCU
    /// callback is named in [`wait_switch`](Self::wait_switch).
    fn locked_when_idle(&self, ctx: &mut Ctx, what: &str) -> Locked<'_> {
        rcu::might_block(what);
        loop {
            let s = self.lock();
            if !self.switching.load(Ordering::Relaxed) {
                return s;
            }
            drop(s);
            self.wait_switch(ctx);
        }
    }

    /// Waits until no switch to atomic mode is pending. A blocking wait: an RCU extended
    /// quiescent state (so the grace period it waits for can end) that runs this core's ready
    /// RCU callbacks (the switch's callback may be queued on this core). Not inside a read-side
    /// section or an interrupt handler (checked by `might_block` in locked_when_idle or the
    /// caller), nor from an RCU callback (a named error).
    fn wait_switch(&self, ctx: &mut Ctx) {
        // S: Acquire pairs with the Release clear in switch_rcu.
        if !self.switching.load(Ordering::Acquire) {
            return;
        }
        if rcu::in_callback() {
            // The switch's callback may be queued behind the one running, on this core.
            panic!(
                "percpu_ref: waiting for a mode switch from an RCU callback on core {} (it would wait for itself)",
                machine::cpu_id()
            );
        }
        // As a quiescent waiter that runs this core's ready callbacks (the switch's own callback
        // may be queued here).
        rcu::wait_quiescent(ctx, || self.switching.load(Ordering::Acquire));
    }

    /// Starts the switch's grace period (lock held, the switch's reference already taken).
    fn start_switch(&self, s: &mut Slow, confirm: Option<Confirm>, fold: bool) {
        s.confirm = confirm;
        self.switching.store(true, Ordering::Relaxed); // read under the lock, or with S
        let me = self.me.upgrade().expect("percpu_ref: used outside its Arc");
        let fold_after_gp = if cfg!(quiescent_inject = "ref-fold-no-gp") && fold {
            // Fault injection (never in normal builds): fold now, without the grace period (G)
            // that lets in-flight percpu-mode gets and puts finish. The torture must catch it.
            if self.fold(s) {
                self.report(Misuse::PutBelowZero);
            }
            false
        } else {
            fold
        };
        // G: call_rcu's snapshot (RCU barrier D) orders the ATOMIC/DEAD store before the grace
        // period it waits for.
        crate::machine::grace_period!("G", rcu::call_rcu(move |ctx| me.switch_rcu(ctx, fold_after_gp)));
    }

    /// Adds the per-core counters into the atomic count and removes the bias (lock held).
    /// Returns whether the result was below zero (the holders put more than they got): then it
    /// is set to the switch's reference alone, whose put takes the ref to zero and runs release
    /// once.
    fn fold(&self, s: &Slow) -> bool {
        // Wrapping sum over every core set up at boot (offline cores' counters are zero):
        // = gets - puts done in percpu mode, mod 2^64; read as i64 (see the module docs).
        let sum = s.pcpu.as_ref().map_or(0, |p| p.sum(0..machine::nr_areas()));
        let delta = (sum as i64).wrapping_sub(PERCPU_COUNT_BIAS);
        // F: AcqRel (see the module docs). Adds the percpu contribution and removes the bias in
        // one RMW: the bias kept the count above zero until here.
        let v = self.count.fetch_add(delta, crate::machine::ordering!(AcqRel, "F")).wrapping_add(delta);
        if v <= 0 {
            // `v` includes this switch's own reference.
            self.count.fetch_add(1 - v, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The RCU callback of a switch (Linux's `percpu_ref_switch_to_atomic_rcu` and
    /// `percpu_ref_call_confirm_rcu`). A grace period has passed since ATOMIC (and DEAD) were
    /// stored: every get/put that loaded the percpu word has completed its add, and no core
    /// will start another (G). No barrier is needed here beyond the grace period's own.
    fn switch_rcu(&self, ctx: &AtomicCtx, fold: bool) {
        let mut below_zero = false;
        let (confirm, freed) = {
            let mut s = self.lock();
            if fold {
                below_zero = self.fold(&s);
            }
            let dead = self.word.load(Ordering::Relaxed) & DEAD != 0;
            let freed = if s.exit_pending || (dead && !self.allow_reinit) {
                // Linux's percpu_ref_exit in percpu_ref_call_confirm_rcu: nobody will read or
                // write the counters again (every core sees ATOMIC, and nothing can switch the
                // ref back to percpu mode).
                s.exit_pending = false;
                self.word.store(ATOMIC | DEAD, Ordering::Relaxed);
                s.pcpu.take()
            } else {
                None
            };
            (s.confirm.take(), freed)
        };
        drop(freed);
        if below_zero {
            self.report(Misuse::PutBelowZero);
        }
        if let Some(c) = confirm {
            c();
        }
        let late_exit = {
            let mut s = self.lock();
            // S: the fold and the confirmation happen before a waiter sees the switch done.
            // Under the lock, so an `exit` that found the switch pending (and left its freeing to
            // the switch) is seen here, however late during the confirmation it came.
            self.switching.store(false, crate::machine::ordering!(Release, "S@switch_rcu"));
            if s.exit_pending {
                // ATOMIC since this switch's grace period: nothing can be adding to the counters.
                s.exit_pending = false;
                self.word.store(ATOMIC | DEAD, Ordering::Relaxed);
                s.pcpu.take()
            } else {
                None
            }
        };
        drop(late_exit);
        // The switch's reference: taken when it started, so release cannot run before confirm.
        self.put(ctx);
    }

    /// Drops the initial reference and switches the ref to atomic mode, dying (Linux's
    /// `percpu_ref_kill`): `tryget_live` fails from the moment a core sees it, `release` runs
    /// when the last reference is put. Killing twice is reported and the second call ignored.
    /// Never blocks; `ctx` is for the put of the initial reference (see [`get`](Self::get)).
    ///
    /// Context: task, interrupt handler or RCU callback (takes `&AtomicCtx`); never blocks; allocates.
    pub fn kill(&self, ctx: &AtomicCtx) {
        self.kill_locked(ctx, self.lock(), None);
    }

    /// [`kill`](Self::kill), then `confirm` once every core is guaranteed to see the ref as
    /// dying: after a grace period, so no `tryget_live` can succeed anywhere afterwards, and
    /// before `release` can run. `confirm` runs in RCU callback context and must not block.
    /// May block (as a quiescent waiter) if a switch to atomic mode is already pending, so then
    /// it must not be called inside a read-side section or from an RCU callback.
    ///
    /// Context: may block (takes `&mut Ctx`); allocates.
    pub fn kill_and_confirm(&self, ctx: &mut Ctx, confirm: impl FnOnce() + Send + 'static) {
        // Named even when it will not wait, as locked_when_idle does for the other mode changes.
        rcu::might_block("percpu_ref_kill_and_confirm");
        self.kill_blocking(ctx, Some(Box::new(confirm)));
    }

    /// `kill_and_confirm`: may wait for a pending switch before it kills.
    fn kill_blocking(&self, ctx: &mut Ctx, confirm: Option<Confirm>) {
        let mut s = self.lock();
        if confirm.is_some() && self.word.load(Ordering::Relaxed) & DEAD == 0 && self.switching.load(Ordering::Relaxed)
        {
            // The pending switch's grace period began before DEAD: wait for it, then start one
            // of our own (Linux waits in __percpu_ref_switch_mode too). A second kill is
            // reported below without waiting; a plain kill never waits.
            drop(s);
            s = self.locked_when_idle(ctx, "percpu_ref_kill_and_confirm");
        }
        self.kill_locked(ctx, s, confirm);
    }

    /// The kill itself, with the lock held (released before the put of the initial reference).
    fn kill_locked(&self, ctx: &AtomicCtx, mut s: Locked<'_>, confirm: Option<Confirm>) {
        let mut confirm_now = None;
        {
            let w = self.word.load(Ordering::Relaxed);
            if w & DEAD != 0 {
                drop(s);
                self.report(Misuse::KillTwice);
                return;
            }
            if w & ATOMIC == 0 {
                // Percpu -> atomic and dying in one store, so no core ever sees DEAD without
                // ATOMIC. Relaxed: the grace period (G) orders it for every core that matters.
                self.word.store(w | ATOMIC | DEAD, Ordering::Relaxed);
                // The switch's reference (the count is biased, so this cannot revive a zero).
                self.count.fetch_add(1, Ordering::Relaxed);
                self.start_switch(&mut s, confirm, true);
            } else {
                self.word.store(w | DEAD, Ordering::Relaxed);
                if let Some(c) = confirm {
                    if self.tryget_slow(1) {
                        // Confirm after a grace period, holding a reference until then.
                        self.start_switch(&mut s, Some(c), false);
                    } else {
                        // Already zero: no reference can be taken anyway.
                        confirm_now = Some(c);
                    }
                }
            }
            drop(s);
        }
        if let Some(c) = confirm_now {
            c();
        }
        // The initial reference. ATOMIC is set, so this goes to the atomic count (biased if a
        // fold is pending); outside the lock, since it may run release.
        self.put(ctx);
    }

    /// Switches to atomic mode and keeps the ref there (across kill/resurrect) until
    /// [`switch_to_percpu`](Self::switch_to_percpu) (Linux's `percpu_ref_switch_to_atomic`).
    /// `confirm` runs once every core uses the atomic count: after a grace period, or at once
    /// if the ref is already atomic. May block if a switch is already pending.
    ///
    /// Context: may block (takes `&mut Ctx`); allocates.
    pub fn switch_to_atomic(&self, ctx: &mut Ctx, confirm: impl FnOnce() + Send + 'static) {
        self.switch_to_atomic_inner(ctx, "percpu_ref_switch_to_atomic", Some(Box::new(confirm)));
    }

    /// Switches to atomic mode and waits until the switch is complete (the count is then exact:
    /// see [`count`](Self::count)). A blocking wait: not inside a read-side section.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn switch_to_atomic_sync(&self, ctx: &mut Ctx) {
        self.switch_to_atomic_inner(ctx, "percpu_ref_switch_to_atomic_sync", None);
        self.wait_switch(ctx);
    }

    fn switch_to_atomic_inner(&self, ctx: &mut Ctx, what: &str, confirm: Option<Confirm>) {
        let mut s = self.locked_when_idle(ctx, what);
        s.force_atomic = true;
        let w = self.word.load(Ordering::Relaxed);
        if w & ATOMIC != 0 {
            drop(s);
            if let Some(c) = confirm {
                c();
            }
            return;
        }
        self.word.store(w | ATOMIC, Ordering::Relaxed); // ordered by G
        self.count.fetch_add(1, Ordering::Relaxed); // the switch's reference (count biased)
        self.start_switch(&mut s, confirm, true);
    }

    /// Switches back to percpu mode (Linux's `percpu_ref_switch_to_percpu`); waits for a pending
    /// switch to atomic mode first. Ignored with a warning on a dying or released ref.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn switch_to_percpu(&self, ctx: &mut Ctx) {
        let mut s = self.locked_when_idle(ctx, "percpu_ref_switch_to_percpu");
        let w = self.word.load(Ordering::Relaxed);
        if w & DEAD != 0 || (w & ATOMIC != 0 && self.count.load(Ordering::Relaxed) <= 0) {
            drop(s);
            self.report(Misuse::SwitchToPercpuDead);
            return;
        }
        s.force_atomic = false;
        let ok = self.to_percpu_locked(&mut s);
        drop(s);
        if !ok {
            self.report(Misuse::UsedAfterExit);
        }
    }

    /// Atomic -> percpu with the lock held and no switch pending. False if the counters are gone.
    fn to_percpu_locked(&self, s: &mut Slow) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        if w & ATOMIC == 0 {
            return true;
        }
        let Some(p) = s.pcpu.as_ref() else { return false };
        // Bias first: percpu-mode puts will not reach the atomic count, but the fold must be
        // able to subtract the bias again.
        self.count.fetch_add(PERCPU_COUNT_BIAS, Ordering::Relaxed);
        for cpu in 0..machine::nr_areas() {
            // The ref has been atomic since a completed grace period (no switch is pending,
            // checked under this lock; INIT_ATOMIC refs were never percpu), so every get/put that
            // loaded a percpu word has finished, and later ones see ATOMIC until the store below.
            // SAFETY: no core touches these counters now (see above; the word changes only here).
            unsafe { p.remote_set(cpu, 0) };
        }
        // R: the zeroed counters before the cleared ATOMIC bit; pairs with the address
        // dependency from the word load to the counter access in the fast path.
        self.word.store(w & !ATOMIC, crate::machine::ordering!(Release, "R"));
        true
    }

    /// Makes a dying or dead ref live again with one new reference, in the mode it had before
    /// the kill (Linux's `percpu_ref_resurrect`). Needs [`Flags::ALLOW_REINIT`]. If `release`
    /// frees the object, the caller must make sure it cannot run during this call. Waits for a
    /// pending switch first. `tryget`/`tryget_live` may run concurrently.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn resurrect(&self, ctx: &mut Ctx) -> Result<(), PercpuRefError> {
        self.revive(ctx, "percpu_ref_resurrect", false)
    }

    /// Makes a ref whose count reached zero live again, as after `init` (Linux's
    /// `percpu_ref_reinit`). Needs [`Flags::ALLOW_REINIT`] and a zero count; otherwise returns
    /// a named error (also reported) and changes nothing.
    ///
    /// Context: may block (takes `&mut Ctx`).
    pub fn reinit(&self, ctx: &mut Ctx) -> Result<(), PercpuRefError> {
        self.revive(ctx, "percpu_ref_reinit", true)
    }

    fn revive(&self, ctx: &mut Ctx, what: &str, need_zero: bool) -> Result<(), PercpuRefError> {
        let r = {
            let mut s = self.locked_when_idle(ctx, what);
            self.revive_locked(&mut s, need_zero)
        };
        if let Err(e) = r {
            self.report(match e {
                PercpuRefError::ReinitNotAllowed => Misuse::ReinitNotAllowed,
                PercpuRefError::ReinitNotZero => Misuse::ReinitNotZero,
                PercpuRefError::NotDead => Misuse::ResurrectNotDead,
                _ => Misuse::UsedAfterExit,
            });
        }
        r
    }

    /// resurrect/reinit with the lock held and no switch pending.
    fn revive_locked(&self, s: &mut Slow, need_zero: bool) -> Result<(), PercpuRefError> {
        if !self.allow_reinit {
            return Err(PercpuRefError::ReinitNotAllowed);
        }
        let w = self.word.load(Ordering::Relaxed);
        if need_zero && !(w & ATOMIC != 0 && self.count.load(Ordering::Acquire) == 0) {
            return Err(PercpuRefError::ReinitNotZero);
        }
        if w & DEAD == 0 {
            return Err(PercpuRefError::NotDead);
        }
        if s.pcpu.is_none() {
            return Err(PercpuRefError::Exited);
        }
        // DEAD implies ATOMIC: the ref stays atomic until to_percpu_locked.
        self.word.store(w & !DEAD, Ordering::Relaxed);
        // The new initial reference; Release so a tryget that sees it (T) sees what the
        // caller wrote before reviving.
        self.count.fetch_add(1, Ordering::Release);
        if !s.force_atomic {
            let ok = self.to_percpu_locked(s);
            debug_assert!(ok, "counters present (checked above)");
        }
        Ok(())
    }

    /// Frees the per-cpu counters (Linux's `percpu_ref_exit`); the ref is left atomic and dead.
    /// The caller should no longer use the ref (typically from `release`, or after `init` when
    /// the rest of an object's set-up failed). Never blocks.
    ///
    /// Safe code may still have a get or put in flight on another core, one that loaded the
    /// percpu word before this call: in percpu mode `exit` therefore switches the ref to atomic
    /// mode as `kill` does and leaves the fold and the freeing to the switch's RCU callback, a
    /// grace period later (G), so a late add lands in this ref's own counter and is folded into
    /// the count, never in memory the allocator has handed to someone else (Linux frees at once
    /// and makes that the caller's problem). In atomic mode with no switch pending the counters
    /// have been unused since a completed grace period and are freed at once. During a pending
    /// switch `exit` is reported and the switch frees the counters when it is done.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn exit(&self) {
        let mut s = self.lock();
        if self.switching.load(Ordering::Relaxed) {
            s.exit_pending = true;
            drop(s);
            self.report(Misuse::ExitWhileSwitching);
            return;
        }
        if s.pcpu.is_none() {
            return;
        }
        let w = self.word.load(Ordering::Relaxed);
        if w & ATOMIC == 0 {
            // Percpu -> atomic and dead in one store (no core sees DEAD without ATOMIC), then the
            // switch: its reference (the count is biased, so this cannot revive a zero), its
            // grace period, the fold and, since exit is pending, the freeing.
            self.word.store(w | ATOMIC | DEAD, Ordering::Relaxed);
            self.count.fetch_add(1, Ordering::Relaxed);
            s.exit_pending = true;
            self.start_switch(&mut s, None, true);
            return;
        }
        // ATOMIC since a completed grace period (no switch is pending, checked under this lock,
        // and only a switch under it can clear ATOMIC): no core adds to the counters.
        let freed = s.pcpu.take();
        self.word.store(ATOMIC | DEAD, Ordering::Relaxed);
        drop(s);
        drop(freed);
    }
}
