//! Quiescent states and extended quiescent states: reports from the idle loop, blocking waits
//! (and the named errors for blocking where that is not allowed), interrupt entry and exit,
//! and the idle loop's hooks around sleeping.

use super::callbacks::{first_pending_gp, has_ready_callbacks, process_callbacks, IN_CALLBACKS};
use super::read::assert_not_in_reader;
use super::{tree, CPUS, DONE, GP_SEQ, STARTED};
use crate::machine::{self, cpu_id, smp_mb, Ctx, Ordering};

machine::percpu! {
    /// `GP_SEQ` as this core's last full pass of [`rcu_quiescent_state`] read it (u64::MAX:
    /// none yet). While `GP_SEQ` still has this value no grace period has started or completed
    /// since, so this core has nothing to report and no callback of its has become ready (a
    /// callback queued since needs a grace period that has not completed).
    static QS_SEQ: u64 = u64::MAX;
}

/// Reports a quiescent state for this core (the idle loop calls this between work items; long
/// work may call it too), then runs this core's callbacks whose grace period has ended.
///
/// The fast path, when no grace period has started or completed since this core's last call,
/// is two loads and a compare, inlined into the caller (liburcu's `rcu_quiescent_state` is a
/// load, a store and two fences). It reports nothing, so it needs no barrier: every report
/// happens in the out-of-line slow path, whose barriers (A, C) are `rcu_qs`'s, and across whose
/// call the compiler moves no access.
///
/// Takes the context `&mut`: no reference obtained under an earlier read guard can be live here.
///
/// Context: may block (takes `&mut Ctx`).
#[inline(always)]
pub fn rcu_quiescent_state(_ctx: &mut Ctx) {
    qs_checks();
    if QS_SEQ.get() == GP_SEQ.load(Ordering::Relaxed) {
        return;
    }
    rcu_quiescent_state_slow();
}

#[inline(never)]
fn rcu_quiescent_state_slow() {
    // Q: Acquire pairs with the Release store of GP_SEQ in gp_start()/complete_locked(): the
    // STARTED and DONE that rcu_qs() and process_callbacks() read below are at least as new as
    // the change that moved GP_SEQ to `seq`.
    let seq = GP_SEQ.load(crate::machine::ordering!(Acquire, "Q"));
    rcu_qs();
    process_callbacks();
    // Inside a callback, process_callbacks() returned without running the ready ones (the
    // running pass will): do not record a pass that did not happen.
    if !IN_CALLBACKS.get() {
        QS_SEQ.set(seq);
    }
}

/// Debug builds: a quiescent state inside a read-side section, or from an interrupt handler
/// (it would report for the code it interrupted), is a named error. Reading SPSel (a system
/// register) costs on this hot path, hence debug builds only.
#[inline(always)]
fn qs_checks() {
    assert_not_in_reader("quiescent state");
    if cfg!(debug_assertions) && machine::in_interrupt() {
        blocking_in_interrupt("quiescent state");
    }
}

/// Reports a quiescent state: this core holds no reference obtained in an earlier read-side
/// section. The fast path (this core's `ctr` already equals `STARTED`) is two loads.
#[inline]
pub(super) fn rcu_qs() {
    qs_checks();
    let me = cpu_id();
    let g = STARTED.load(Ordering::Relaxed);
    let c = CPUS.local();
    if c.ctr.load(Ordering::Relaxed) == g {
        return;
    }
    crate::machine::smp_mb!("A@rcu_qs"); // A: earlier read-side accesses complete before the report; pairs with B
    c.ctr.store(g, Ordering::Relaxed);
    crate::machine::smp_mb!("C@rcu_qs"); // C: the report is visible before later readers run; pairs with D
    if g > DONE.load(Ordering::Relaxed) {
        // O(1): this core's bit in its leaf (the lock chain to DONE continues A, see B).
        tree::report(me, g);
    }
}

/// Enters an extended quiescent state (before sleeping, or around a blocking wait): grace
/// periods stop waiting for this core.
pub(super) fn eqs_enter() {
    assert_not_in_reader("sleeping or blocking");
    let me = cpu_id();
    let c = CPUS.local();
    crate::machine::smp_mb!("A@eqs_enter"); // A: all earlier reads are complete before the core is seen as idle; pairs with B
    c.ctr.store(0, Ordering::Relaxed);
    // The idle state before reading STARTED: a store-buffering pair with D in gp_start, so
    // either the starter's set-up sees ctr = 0 and leaves this core out, or this core sees the
    // new grace period here and reports for it itself. Also E.
    smp_mb(); // pairs with D in gp_start (and is E for idle_enter)
    report_idle(me);
}

/// After `ctr = 0` and a full barrier: reports for the grace period in progress, if any.
#[inline]
fn report_idle(me: usize) {
    let g = STARTED.load(Ordering::Relaxed);
    if g > DONE.load(Ordering::Relaxed) {
        tree::report(me, g);
    }
}

/// Leaves the extended quiescent state, with the full barrier before any reader can run.
pub(super) fn eqs_exit() {
    let c = CPUS.local();
    c.ctr.store(STARTED.load(Ordering::Relaxed), Ordering::Relaxed);
    crate::machine::smp_mb!("C@eqs_exit"); // C: the new ctr is visible before any reader runs; pairs with D in gp_start
}

/// This core stops for good (parked at shutdown, or by a Stop IPI, possibly inside an interrupt
/// handler whose `irq_exit` will never run): grace periods stop waiting for it, as Linux's
/// `rcutree_report_cpu_dead`. No checks: the interrupted code may be anywhere.
pub(super) fn cpu_dead() {
    let me = cpu_id();
    let c = CPUS.local();
    crate::machine::smp_mb!("A@cpu_dead"); // A: this core's reads are complete before it reads as idle; pairs with B
    c.ctr.store(0, Ordering::Relaxed);
    smp_mb(); // as in eqs_enter: ctr = 0 before reading STARTED; pairs with D in gp_start
              // The grace period in progress must not wait for a core that will never report again.
              // Interrupts are masked (park), and every tree lock is held with them masked, so the code
              // this may have interrupted holds none of them.
    report_idle(me);
}

/// Runs `cond` until it is false, as an extended quiescent state (a blocking wait must not
/// hold up grace periods: a writer waiting for a grace period and a core waiting for that
/// writer would otherwise wait for each other). This core's ready callbacks run meanwhile.
/// A blocking wait: not in an interrupt handler, not inside a read-side section (`ctx` is
/// borrowed `&mut`). `cond` runs while RCU is not watching this core, with no context.
///
/// Context: may block (takes `&mut Ctx`).
pub fn wait_quiescent(_ctx: &mut Ctx, cond: impl FnMut() -> bool) {
    wait_quiescent_inner(cond)
}

/// [`wait_quiescent`] for the blocking waits below RCU (the idle hooks' `blocking_wait`, whose
/// caller holds the context) and for RCU's own.
pub(super) fn wait_quiescent_inner(mut cond: impl FnMut() -> bool) {
    might_block("a blocking wait");
    not_in_callback("a blocking wait");
    eqs_enter();
    // `cond` is the caller's code: if it panics and the panic is caught (a hosted build
    // unwinds), the caller goes on with its context, so the core must be a reader again.
    // Not under loom: there a panic is a failure loom found, after which nothing goes on with
    // the context, and the execution may have no active thread left (a deadlock in `cond`'s
    // condition variable), so a loom access in `eqs_exit` would panic again while unwinding and
    // abort the model's process instead of failing its execution.
    #[cfg(not(loom))]
    let _exit = EqsExitOnDrop;
    while cond() {
        callbacks_while_waiting();
        machine::cpu_relax();
    }
    #[cfg(loom)]
    eqs_exit();
}

/// Leaves the extended quiescent state when dropped: at the end of a wait, and when a panic
/// unwinds out of it.
#[cfg(not(loom))]
struct EqsExitOnDrop;

#[cfg(not(loom))]
impl Drop for EqsExitOnDrop {
    fn drop(&mut self) {
        eqs_exit();
    }
}

/// Inside an extended quiescent state: runs this core's ready callbacks (as a reader again for
/// their duration), so a core blocked in a wait does not hold up `rcu_barrier` callers.
#[inline]
pub(super) fn callbacks_while_waiting() {
    if has_ready_callbacks() && !IN_CALLBACKS.get() {
        eqs_exit();
        process_callbacks();
        eqs_enter();
    }
}

/// Names the misuse of blocking (a wait that passes quiescent points) where that is not
/// allowed: in an interrupt handler (always checked: the handler would wait on the code it
/// interrupted) or inside a read-side section (debug builds). Linux's `might_sleep`.
///
/// Context: any; never blocks (it is the check: panics in an interrupt handler or a read section).
#[inline]
pub fn might_block(what: &str) {
    if machine::in_interrupt() {
        blocking_in_interrupt(what);
    }
    assert_not_in_reader(what);
}

/// The checks every blocking wait makes before it tests its condition (the `might_block` of
/// the platform's `IdleHooks`): not in an interrupt handler, a read-side section or an RCU
/// callback.
pub(super) fn might_block_here() {
    might_block("a blocking wait");
    not_in_callback("a blocking wait");
}

/// Names a blocking wait inside an RCU callback (always checked: one load).
#[inline]
pub(super) fn not_in_callback(what: &str) {
    if IN_CALLBACKS.get() {
        blocking_in_callback(what);
    }
}

#[cold]
#[inline(never)]
fn blocking_in_callback(what: &str) -> ! {
    panic!("{} in an RCU callback on core {} (callbacks must not block)", what, cpu_id())
}

#[cold]
#[inline(never)]
fn blocking_in_interrupt(what: &str) -> ! {
    panic!("{} in interrupt context on core {}", what, cpu_id())
}

/// IRQ entry (registered with `arch::exception`): if this core is in an extended quiescent
/// state, leaves it for the handler, which then runs as a reader that grace periods wait for.
/// Returns whether it did (the token for [`irq_exit`]). Linux's `ct_irq_enter`.
pub(super) fn irq_enter() -> bool {
    let c = CPUS.local();
    if cfg!(quiescent_inject = "irq-eqs") || c.ctr.load(Ordering::Relaxed) != 0 {
        // Not in an extended quiescent state: already a reader. But the interrupted code may be
        // in eqs_exit between its ctr store and barrier C (or in eqs_enter between A and its
        // ctr = 0): exception entry is no memory barrier, so order that store (and its load of
        // STARTED) before the handler's reads here. (`inject-irq-eqs`, fault injection for the
        // torture's self-test, never in normal builds, takes this path even when idle: the
        // hazard this function exists to fix.)
        crate::machine::smp_mb!("K"); // K: pairs with D (as C does)
        return false;
    }
    // If the interrupted code is in eqs_exit between its load of STARTED and its store, that
    // store overwrites this one with an older number after the handler: still not 0 and not
    // newer than the truth, so grace periods only wait longer.
    c.ctr.store(STARTED.load(Ordering::Relaxed), Ordering::Relaxed);
    crate::machine::smp_mb!("I"); // I (= C for the handler): ctr before the handler's reads; pairs with D in gp_start
    true
}

/// IRQ exit: returns to the extended quiescent state [`irq_enter`] left, and completes a grace
/// period that was waiting only for this handler.
pub(super) fn irq_exit(was_idle: bool) {
    if !was_idle {
        // K': the handler's reads complete before the interrupted code's next ctr store (it
        // may be in eqs_enter, about to store 0); pairs with B, as A does.
        crate::machine::smp_mb!("K'");
        return;
    }
    let me = cpu_id();
    let c = CPUS.local();
    crate::machine::smp_mb!("J"); // J (= A for the handler): its reads complete before ctr = 0; pairs with B
    c.ctr.store(0, Ordering::Relaxed);
    smp_mb(); // as in eqs_enter: ctr = 0 before reading STARTED; pairs with D in gp_start
              // The grace period may have waited only for this handler (one leaf lock, IRQs masked).
    report_idle(me);
}

// ---------------------------------------------------------------------------------------------
// Idle-loop hooks.
// ---------------------------------------------------------------------------------------------

/// Idle loop: before sleeping. Returns whether the core may sleep (no callback is ready).
pub(super) fn idle_enter() -> bool {
    let pending = first_pending_gp();
    CPUS.local().wake_for_gp.store(pending.unwrap_or(0), Ordering::Relaxed);
    eqs_enter(); // its smp_mbs include E: wake_for_gp is visible before DONE is re-read; pairs with E in gp::after_complete
    pending.is_none_or(|g| g > DONE.load(Ordering::Acquire))
}

/// Idle loop: about to sleep (after [`idle_enter`]). Keeps this core's tick through the sleep
/// while its callbacks wait for a grace period (Linux's `rcu_needs_cpu`): the tick runs the
/// stall detector, and the cores still ticking may be only the one stalling that grace period
/// (whose own tick leaves the report to another core's).
pub(super) fn idle_needs_tick() -> bool {
    CPUS.local().wake_for_gp.load(Ordering::Relaxed) != 0
}

/// Idle loop: after waking.
pub(super) fn idle_exit() {
    CPUS.local().wake_for_gp.store(0, Ordering::Relaxed);
    eqs_exit();
}
