//! Quiescent-state-based RCU (QSBR), driven by the cores' idle loops.
//!
//! # The model
//!
//! In QSBR a core is inside a read-side critical section whenever it is not at a *quiescent
//! point*. Readers therefore pay nothing: [`rcu_read_lock`] compiles to no instruction at all in
//! release builds, not even a compiler barrier (a nesting count in debug builds, to catch
//! misuse); see its docs for why none is needed. The idle loop reports a quiescent
//! state between work items (each item runs to completion, so no reader spans two), and a core
//! that sleeps first enters an *extended quiescent state* (liburcu's `rcu_thread_offline`, Linux's
//! dynticks-idle), so grace periods neither wait for nor wake sleeping cores.
//!
//! # State
//!
//! * `STARTED` / `DONE`: the number of the last grace period started / completed. A grace period
//!   is in progress while `STARTED > DONE`. Both only grow, under `GP_LOCK`.
//! * `REQUESTED`: the highest grace-period number anyone needs (a `synchronize_rcu` caller or a
//!   callback). Completing a grace period starts the next one if `REQUESTED` is beyond it.
//! * per core `ctr`: `0` while in an extended quiescent state, otherwise the value of `STARTED`
//!   the core saw at its last quiescent state (as liburcu QSBR's reader `ctr`).
//!
//! Grace period `g` is complete once every core's `ctr` is `0` or `g`: each core has either been
//! idle or passed a quiescent point after `g` started. Whoever notices that (a reporting core,
//! a core going idle, a waiting `synchronize_rcu` caller, an interrupt handler returning to an
//! idle core, or the tick) completes it in
//! [`gp_try_complete`]. Nothing needs a dedicated grace-period thread.
//!
//! A caller that needs a grace period that *starts after now* takes the snapshot
//! `STARTED + 1` (Linux's `rcu_seq_snap`): if one is in progress it began before the caller and
//! may not cover the caller's readers, so the caller needs the next one. Concurrent callers with
//! the same snapshot share one grace period, and a caller never waits for more than two.
//!
//! # Barriers (labels used in the code)
//!
//! * **A** (`rcu_qs`, `eqs_enter`): `smp_mb` before a core publishes a quiescent state: its
//!   earlier read-side accesses are complete before the report is seen. Pairs with **B**.
//! * **B** (`gp_try_complete`): `smp_mb` after reading every core's `ctr` and before publishing
//!   `DONE`: whoever sees the grace period complete (and frees memory) is ordered after all the
//!   readers it waited for. Pairs with **A**; the waiter's Acquire load of `DONE` continues it.
//! * **C** (`rcu_qs`, `eqs_exit`): `smp_mb` after a core stores its new `ctr` and before any new
//!   reader runs. Pairs with **D**: a store-buffering pair, so either the grace-period starter sees
//!   the new `ctr` (and waits for this core), or this core's new readers see everything the
//!   updater did before starting the grace period (the removal).
//! * **D** (`gp_start`, `snapshot`): `smp_mb` between an updater's removal and its snapshot of
//!   `STARTED`, and after storing a new `STARTED` (on the core that starts the grace period).
//!   Any core may *complete* a grace period, so the completer loads `STARTED` with Acquire
//!   (**D'**, `try_complete`) before reading the cores' `ctr`: a `ctr` it reads is then not older
//!   than the start of the grace period it completes. Pairs with **C**.
//! * **E** (`gp_try_complete`, `idle_enter`): `smp_mb` between publishing `DONE` and reading which
//!   idle cores wait for callbacks, and between an idle core announcing that and re-reading
//!   `DONE`: a store-buffering pair, so an idle core with ready callbacks is never left asleep.
//!
//! * **I** (`irq_enter`), **J** (`irq_exit`): the extended quiescent state is left for an
//!   interrupt handler's duration: I is C for the handler (its `ctr` store before the handler's
//!   first read; pairs with D), J is A for it (the handler's reads complete before `ctr` returns
//!   to 0; pairs with B). See "Interrupts" below.
//! * **K** (`irq_enter`), **K'** (`irq_exit`): the same two barriers when the interrupted core
//!   is *not* idle. It may be inside `eqs_exit` between its `ctr` store and C, or inside
//!   `eqs_enter` between A and its `ctr = 0`, and exception entry and return are not memory
//!   barriers: K orders the interrupted store (and its load of `STARTED`) before the handler's
//!   reads, K' the handler's reads before the interrupted code's next store. Two `dmb ish` per
//!   interrupt, instead of masking interrupts around every `eqs_enter`/`eqs_exit`.
//! * **O** (`smp::secondary_online`): a core coming online publishes its `ONLINE` bit, then
//!   `smp_mb`, then runs its first reader. The completer reads `ONLINE` after D' (through
//!   [`smp::online_cpus`]): a store-buffering pair with D, so either the completer sees the new
//!   core (and waits for its `ctr`) or the new core's readers see the updater's removal.
//!
//! Readers use [`rcu_dereference`] (a plain load: on ARMv8 the address dependency from the
//! pointer to the data orders the two loads, so no read barrier is needed; only Alpha would) and
//! updaters [`rcu_assign_pointer`] (a store-release, STLR: the initialisation of the new object is
//! visible before the pointer; pairs with the reader's address dependency).
//!
//! # Interrupts
//!
//! A core in an extended quiescent state (a blocking wait: [`wait_quiescent`],
//! [`synchronize_rcu`], [`rcu_barrier`], `smp::wait_event`) keeps interrupts enabled, and grace
//! periods do not wait for it. Its interrupt handlers must still be readers (a tick hook or a
//! `call_function_single` closure doing a lookup or a percpu_ref get/put), so, as Linux's
//! `ct_irq_enter`/`ct_irq_exit` do, every IRQ runs [`irq_enter`] before its handler and
//! [`irq_exit`] after (registered with `arch::exception` at boot): if the interrupted core was in
//! an extended quiescent state, `irq_enter` leaves it for the handler (I) and `irq_exit` returns
//! to it (J). A core that is not in one is a reader already, and nothing changes. Handlers do not
//! nest (they run with IRQs masked).
//!
//! Which operations may run where:
//!
//! | | interrupt handler | RCU callback | read-side section |
//! |---|---|---|---|
//! | `rcu_read_lock`/`unlock`, `rcu_dereference`, `RcuList::iter` | yes | yes | yes |
//! | `call_rcu`, dropping a [`list::Removed`], `start_poll_synchronize_rcu` | yes | yes | yes |
//! | percpu_ref `get`/`put`/`tryget`/`tryget_live`/`kill` | yes | yes | yes |
//! | percpu-rwsem `down_read_trylock`, `up_read` | yes | yes | yes |
//! | `synchronize_rcu`, `wait_quiescent`, `smp::call_on`, lock waits (blocking waits) | no (named error) | no (named error) | no (debug: named error) |
//! | `rcu_barrier` | no (named error) | no (named error: it would wait for itself) | no (debug: named error) |
//! | percpu_ref mode changes (`switch_to_*`, `reinit`, `resurrect`, `kill_and_confirm`) | no (named error) | only if no switch is pending (waiting: named error) | no (debug: named error) |
//!
//! The grace-period lock and the callback lists are locked with interrupts masked, so a
//! handler never spins on a lock the code it interrupted holds, and a core holding another
//! IRQ-masked lock (percpu_ref's, around `call_rcu`) never waits for a holder that an interrupt
//! keeps from releasing it.
//!
//! # Where callbacks run
//!
//! A core runs its ready callbacks in its idle loop between work items, at
//! [`rcu_quiescent_state`], and inside any blocking wait on it ([`wait_quiescent`],
//! [`synchronize_rcu`], [`rcu_barrier`]): a core blocked in a wait must not hold up
//! `rcu_barrier` callers on other cores. As with Linux's softirq callbacks, a callback must
//! therefore not take a lock that code on the same core may hold across a blocking wait, and
//! must not block itself (a blocking wait in a callback is a named error: it could wait for
//! the code it runs inside, or for a core whose idle loop it holds up).

pub mod list;

use crate::arch::{self, smp_mb};
use crate::percpu::cpu_id;
use crate::smp::{self, ipi};
use crate::MAX_CPUS;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

// Grace-period numbers start at 1: a core's `ctr` of 0 means "idle", so no grace period may
// ever be numbered 0 (a core that left idle before the first grace period would look idle).
static STARTED: AtomicU64 = AtomicU64::new(1);
static DONE: AtomicU64 = AtomicU64::new(1);
static REQUESTED: AtomicU64 = AtomicU64::new(1);
/// Serialises starting and completing grace periods. Always held with interrupts masked (Linux's
/// `raw_spin_lock_irqsave` on its rcu_node locks): an interrupt handler may take it (a `call_rcu`
/// from a handler requests a grace period), and other IRQ-masked locks are held while taking it
/// (percpu_ref's lock around `call_rcu`), so a holder must never be interrupted.
static GP_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// GP_LOCK with interrupts masked; fields drop in order, so the lock is released first.
struct GpLocked {
    _g: spin::MutexGuard<'static, ()>,
    _irq: arch::IrqGuard,
}

fn gp_lock() -> GpLocked {
    let irq = arch::IrqGuard::new();
    GpLocked { _g: GP_LOCK.lock(), _irq: irq }
}

fn gp_try_lock() -> Option<GpLocked> {
    let irq = arch::IrqGuard::new();
    GP_LOCK.try_lock().map(|g| GpLocked { _g: g, _irq: irq })
}
/// Counter value when the current grace period started, and the sum of completed durations.
static GP_START_TIME: AtomicU64 = AtomicU64::new(0);
static GP_TOTAL_TICKS: AtomicU64 = AtomicU64::new(0);
static GP_TIMED: AtomicU64 = AtomicU64::new(0);
/// Whether grace periods are timed (two counter reads per grace period, which cost ~100 ns
/// each under QEMU; off by default). The stall detector does not need it: the tick notes when
/// it first sees each grace period.
static GP_TIMING: AtomicBool = AtomicBool::new(false);
/// The grace period the tick last saw in progress (for stall timing).
static TICK_SEEN_GP: AtomicU64 = AtomicU64::new(0);
static TICK_SEEN_AT: AtomicU64 = AtomicU64::new(0);

/// Turns grace-period timing (for [`average_gp_ns`]) on or off, and resets the figures.
pub fn set_gp_timing(on: bool) {
    let _l = gp_lock();
    GP_TOTAL_TICKS.store(0, Ordering::Relaxed);
    GP_TIMED.store(0, Ordering::Relaxed);
    // A grace period in progress was not timed from its start: it is skipped by restarting
    // the clock now (its duration is undercounted by at most the time already elapsed).
    GP_START_TIME.store(arch::counter_relaxed(), Ordering::Relaxed);
    GP_TIMING.store(on, Ordering::Relaxed);
}

/// Per-core state others read: one cache line per core.
#[repr(align(64))]
struct RcuCpu {
    /// 0 = extended quiescent state; otherwise the grace-period number seen at the last QS.
    ctr: AtomicU64,
    /// For stall reports, sampled by the tick (not stored on the hot paths, where reading the
    /// counter is costly): the `ctr` value last seen, and the counter time it was first seen.
    seen_ctr: AtomicU64,
    seen_at: AtomicU64,
    /// The grace period the oldest waiting callback of this core needs (u64::MAX: none), so
    /// the idle loop can check for ready callbacks with one load. Written by the owner only.
    first_cb_gp: AtomicU64,
    /// Non-zero while this core sleeps with callbacks waiting for that grace period: the
    /// completer wakes it with an IPI.
    wake_for_gp: AtomicU64,
    /// The grace period a stall of this core was last reported for (once per stall).
    stall_reported: AtomicU64,
}

static CPUS: [RcuCpu; MAX_CPUS] = [const {
    RcuCpu {
        ctr: AtomicU64::new(0),
        seen_ctr: AtomicU64::new(0),
        seen_at: AtomicU64::new(0),
        first_cb_gp: AtomicU64::new(u64::MAX),
        wake_for_gp: AtomicU64::new(0),
        stall_reported: AtomicU64::new(0),
    }
}; MAX_CPUS];

// ---------------------------------------------------------------------------------------------
// Read side.
// ---------------------------------------------------------------------------------------------

crate::percpu! {
    /// Read-side nesting depth (maintained in debug builds only).
    static NESTING: u32 = 0;
}

/// Enters a read-side critical section. Free in release builds: no instruction at all, as in
/// liburcu's QSBR flavour, because in QSBR every instruction between quiescent points is already
/// a reader. (No compiler barrier is needed either: a quiescent point is a call into
/// [`rcu_qs`]/[`eqs_enter`], whose barriers and atomics the compiler cannot move accesses
/// across.) Debug builds count the nesting to catch misuse, and name a reader that starts while
/// RCU is not watching this core (in an extended quiescent state, outside an interrupt).
#[inline(always)]
pub fn rcu_read_lock() {
    #[cfg(debug_assertions)]
    {
        assert_watching("rcu_read_lock");
        NESTING.set(NESTING.get() + 1);
    }
}

/// Leaves a read-side critical section. Debug builds catch an unlock without a lock.
#[inline(always)]
pub fn rcu_read_unlock() {
    #[cfg(debug_assertions)]
    {
        let n = NESTING.get();
        assert!(n > 0, "rcu_read_unlock without rcu_read_lock on core {}", cpu_id());
        NESTING.set(n - 1);
    }
}

/// Whether this core is inside a read-side critical section (always false in release builds).
pub fn in_read_section() -> bool {
    cfg!(debug_assertions) && NESTING.get() > 0
}

/// Panics with the named error if this core is inside a read-side critical section (debug).
#[inline]
pub fn assert_not_in_reader(what: &str) {
    if cfg!(debug_assertions) && NESTING.get() > 0 {
        panic!("{} inside RCU read-side critical section on core {}", what, cpu_id());
    }
}

/// Whether RCU is watching this core: it is not in an extended quiescent state (or is, but
/// runs an interrupt handler, which `irq_enter` made a reader). Linux's `rcu_is_watching`.
#[inline]
pub fn rcu_is_watching() -> bool {
    CPUS[cpu_id()].ctr.load(Ordering::Relaxed) != 0
}

/// Debug builds: panics with a named error if RCU is not watching this core, so a read-side
/// access there is not protected by any grace period. `what` names the operation (fast paths
/// that rely on an implicit read-side section call this).
#[inline(always)]
pub fn assert_watching(what: &str) {
    if cfg!(debug_assertions) && !rcu_is_watching() {
        not_watching(what);
    }
}

#[cold]
#[inline(never)]
fn not_watching(what: &str) -> ! {
    panic!("{} while RCU is not watching core {} (extended quiescent state)", what, cpu_id())
}

/// A read-side critical section for its lifetime. Not `Send`: the section belongs to the core
/// that entered it (a guard dropped on another core would end that core's section instead).
pub struct ReadGuard(core::marker::PhantomData<*const ()>);

impl ReadGuard {
    /// `rcu_read_lock()` now, `rcu_read_unlock()` on drop.
    #[inline(always)]
    pub fn new() -> Self {
        rcu_read_lock();
        ReadGuard(core::marker::PhantomData)
    }
}

// A check that fails to compile if ReadGuard ever becomes Send (the `assert_not_impl_any`
// trick): with Send, both impls below apply and the item is ambiguous.
const _: () = {
    trait AmbiguousIfSend<A> {
        fn item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    let _ = <ReadGuard as AmbiguousIfSend<_>>::item;
};

impl Default for ReadGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ReadGuard {
    #[inline(always)]
    fn drop(&mut self) {
        rcu_read_unlock();
    }
}

/// `rcu_read_lock()` as a guard.
#[inline(always)]
pub fn read() -> ReadGuard {
    ReadGuard::new()
}

/// Loads an RCU-protected pointer (Linux's `rcu_dereference`). A plain load (READ_ONCE): the
/// address dependency to the pointee orders the reads on ARMv8, so no barrier is needed.
#[inline(always)]
pub fn rcu_dereference<T>(p: &AtomicPtr<T>, _guard: &ReadGuard) -> *mut T {
    p.load(Ordering::Relaxed)
}

/// Publishes a pointer (Linux's `rcu_assign_pointer`): STLR, so everything written to the
/// object before is visible to a reader that sees the pointer; pairs with the address
/// dependency in [`rcu_dereference`].
#[inline(always)]
pub fn rcu_assign_pointer<T>(p: &AtomicPtr<T>, v: *mut T) {
    p.store(v, Ordering::Release);
}

// ---------------------------------------------------------------------------------------------
// Quiescent states.
// ---------------------------------------------------------------------------------------------

/// Reports a quiescent state for this core (the idle loop calls this between work items; long
/// work may call it too), then runs this core's callbacks whose grace period has ended.
pub fn rcu_quiescent_state() {
    rcu_qs();
    process_callbacks();
}

/// Reports a quiescent state: this core holds no reference obtained in an earlier read-side
/// section. The fast path (no grace period has started since the last report) is one load.
#[inline]
pub fn rcu_qs() {
    assert_not_in_reader("quiescent state");
    // An interrupt handler reporting would report for the code it interrupted (debug check:
    // reading SPSel costs on this hot path under QEMU).
    if cfg!(debug_assertions) && arch::in_interrupt() {
        blocking_in_interrupt("quiescent state");
    }
    let me = cpu_id();
    let g = STARTED.load(Ordering::Relaxed);
    let c = &CPUS[me];
    if c.ctr.load(Ordering::Relaxed) == g {
        return;
    }
    smp_mb(); // A: earlier read-side accesses complete before the report; pairs with B
    c.ctr.store(g, Ordering::Relaxed);
    smp_mb(); // C: the report is visible before later readers run; pairs with D
    if g > DONE.load(Ordering::Relaxed) {
        gp_try_complete();
    }
}

/// Enters an extended quiescent state (before sleeping, or around a blocking wait): grace
/// periods stop waiting for this core.
pub fn eqs_enter() {
    assert_not_in_reader("sleeping or blocking");
    let c = &CPUS[cpu_id()];
    smp_mb(); // A: all earlier reads are complete before the core is seen as idle; pairs with B
    c.ctr.store(0, Ordering::Relaxed);
    // The idle report before reading the grace-period state and the other cores' ctr: a
    // store-buffering pair with C in rcu_qs, so of a core going idle and a core reporting at
    // the same time, at least one sees the other and completes the grace period. Also E.
    smp_mb(); // pairs with C in rcu_qs (and is E for idle_enter)
    if STARTED.load(Ordering::Relaxed) > DONE.load(Ordering::Relaxed) {
        // This core may have been the last one a grace period waited for.
        gp_try_complete();
    }
}

/// Leaves the extended quiescent state, with the full barrier before any reader can run.
pub fn eqs_exit() {
    let c = &CPUS[cpu_id()];
    c.ctr.store(STARTED.load(Ordering::Relaxed), Ordering::Relaxed);
    smp_mb(); // C: the new ctr is visible before any reader runs; pairs with D in gp_start
}

/// This core stops for good (parked at shutdown, or by a Stop IPI, possibly inside an interrupt
/// handler whose `irq_exit` will never run): grace periods stop waiting for it, as Linux's
/// `rcutree_report_cpu_dead`. No checks: the interrupted code may be anywhere.
pub fn cpu_dead() {
    let c = &CPUS[cpu_id()];
    smp_mb(); // A: this core's reads are complete before it reads as idle; pairs with B
    c.ctr.store(0, Ordering::Relaxed);
    smp_mb(); // the idle report visible before the core parks; pairs with C
}

/// Runs `cond` until it is false, as an extended quiescent state (a blocking wait must not
/// hold up grace periods: a writer waiting for a grace period and a core waiting for that
/// writer would otherwise wait for each other). This core's ready callbacks run meanwhile.
/// A blocking wait: not in an interrupt handler, not inside a read-side section.
pub fn wait_quiescent(mut cond: impl FnMut() -> bool) {
    might_block("a blocking wait");
    not_in_callback("a blocking wait");
    eqs_enter();
    while cond() {
        callbacks_while_waiting();
        arch::cpu_relax();
    }
    eqs_exit();
}

/// Inside an extended quiescent state: runs this core's ready callbacks (as a reader again for
/// their duration), so a core blocked in a wait does not hold up `rcu_barrier` callers.
#[inline]
fn callbacks_while_waiting() {
    if has_ready_callbacks() && !IN_CALLBACKS.get() {
        eqs_exit();
        process_callbacks();
        eqs_enter();
    }
}

/// Names the misuse of blocking (a wait that passes quiescent points) where that is not
/// allowed: in an interrupt handler (always checked: the handler would wait on the code it
/// interrupted) or inside a read-side section (debug builds). Linux's `might_sleep`.
#[inline]
pub fn might_block(what: &str) {
    if arch::in_interrupt() {
        blocking_in_interrupt(what);
    }
    assert_not_in_reader(what);
}

/// Names a blocking wait inside an RCU callback (always checked: one load).
#[inline]
fn not_in_callback(what: &str) {
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
pub fn irq_enter() -> bool {
    let c = &CPUS[cpu_id()];
    if cfg!(feature = "inject-irq-eqs") || c.ctr.load(Ordering::Relaxed) != 0 {
        // Not in an extended quiescent state: already a reader. But the interrupted code may be
        // in eqs_exit between its ctr store and barrier C (or in eqs_enter between A and its
        // ctr = 0): exception entry is no memory barrier, so order that store (and its load of
        // STARTED) before the handler's reads here. (`inject-irq-eqs`, fault injection for the
        // torture's self-test, never in normal builds, takes this path even when idle: the
        // hazard this function exists to fix.)
        smp_mb(); // K: pairs with D (as C does), and with K' in irq_exit
        return false;
    }
    // If the interrupted code is in eqs_exit between its load of STARTED and its store, that
    // store overwrites this one with an older number after the handler: still not 0 and not
    // newer than the truth, so grace periods only wait longer.
    c.ctr.store(STARTED.load(Ordering::Relaxed), Ordering::Relaxed);
    smp_mb(); // I (= C for the handler): ctr before the handler's reads; pairs with D in gp_start
    true
}

/// IRQ exit: returns to the extended quiescent state [`irq_enter`] left, and completes a grace
/// period that was waiting only for this handler.
pub fn irq_exit(was_idle: bool) {
    if !was_idle {
        // K': the handler's reads complete before the interrupted code's next ctr store (it
        // may be in eqs_enter, about to store 0); pairs with B, as A does.
        smp_mb();
        return;
    }
    let c = &CPUS[cpu_id()];
    smp_mb(); // J (= A for the handler): its reads complete before ctr = 0; pairs with B
    c.ctr.store(0, Ordering::Relaxed);
    smp_mb(); // as in eqs_enter: the idle report before reading grace-period state; pairs with C
    if STARTED.load(Ordering::Relaxed) > DONE.load(Ordering::Relaxed) {
        try_complete(true);
    }
}

// ---------------------------------------------------------------------------------------------
// Grace periods.
// ---------------------------------------------------------------------------------------------

/// The grace period a caller needs: the next one to start (Linux's `rcu_seq_snap`).
fn snapshot() -> u64 {
    // D: the caller's updates (e.g. a list removal) are ordered before the snapshot; pairs with
    // C in rcu_qs()/eqs_exit() through the grace period the snapshot selects.
    smp_mb();
    STARTED.load(Ordering::Relaxed) + 1
}

/// Records that grace period `g` is needed, starting it if none is in progress. Safe in an
/// interrupt handler (GP_LOCK's holders run with interrupts masked).
fn request(g: u64) {
    if REQUESTED.load(Ordering::Relaxed) >= g && STARTED.load(Ordering::Relaxed) >= g {
        return; // already requested and started: the completer's chain covers it
    }
    let _l = gp_lock();
    if REQUESTED.load(Ordering::Relaxed) < g {
        REQUESTED.store(g, Ordering::Relaxed); // under GP_LOCK
    }
    start_if_requested();
}

/// Starts the next grace period if none is in progress and one is requested (GP_LOCK held).
fn start_if_requested() {
    let s = STARTED.load(Ordering::Relaxed);
    if s == DONE.load(Ordering::Relaxed) && s < REQUESTED.load(Ordering::Relaxed) {
        gp_start(s + 1);
    }
}

/// Starts grace period `g` (with GP_LOCK held).
fn gp_start(g: u64) {
    if GP_TIMING.load(Ordering::Relaxed) {
        GP_START_TIME.store(arch::counter_relaxed(), Ordering::Relaxed);
    }
    STARTED.store(g, Ordering::Relaxed);
    smp_mb(); // D: the new STARTED (and what preceded it) before any core's ctr is read; pairs with C
}

/// Completes the grace period in progress if every core has passed a quiescent state (or is
/// idle). Returns whether a grace period completed.
pub fn gp_try_complete() -> bool {
    try_complete(false)
}

/// `from_irq`: only try-lock GP_LOCK (an interrupt handler should not spin on it).
fn try_complete(from_irq: bool) -> bool {
    let mut completed = false;
    // After completing g, the next grace period may already be requested and, with every core
    // idle, nobody else would look at it before the next tick: try it too.
    while complete_one(from_irq) {
        completed = true;
    }
    completed
}

fn complete_one(from_irq: bool) -> bool {
    // D': Acquire, so the ctr reads below are ordered after seeing grace period g start (this
    // core may not be the one that started it); pairs with C through D on the starting core.
    let g = STARTED.load(Ordering::Acquire);
    if g == DONE.load(Ordering::Relaxed) {
        return false;
    }
    let skip = injected_skip_core();
    for cpu in smp::online_cpus() {
        let v = CPUS[cpu].ctr.load(Ordering::Relaxed);
        if v != 0 && v != g && Some(cpu) != skip {
            return false;
        }
    }
    smp_mb(); // B: the quiescent states read above are ordered before DONE; pairs with A
    // From the tick or an IRQ exit, do not spin: whoever holds the lock completes it, or a
    // later tick does.
    let l = if from_irq {
        match gp_try_lock() {
            Some(l) => l,
            None => return false,
        }
    } else {
        gp_lock()
    };
    if STARTED.load(Ordering::Relaxed) != g || DONE.load(Ordering::Relaxed) >= g {
        return false;
    }
    if GP_TIMING.load(Ordering::Relaxed) {
        let took = arch::counter_relaxed().wrapping_sub(GP_START_TIME.load(Ordering::Relaxed));
        GP_TOTAL_TICKS.store(GP_TOTAL_TICKS.load(Ordering::Relaxed) + took, Ordering::Relaxed); // under GP_LOCK
        GP_TIMED.store(GP_TIMED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    DONE.store(g, Ordering::Release);
    start_if_requested();
    drop(l);
    smp_mb(); // E: DONE is visible before the idle cores' wake requests are read; pairs with E in idle_enter
    for cpu in smp::online_cpus() {
        let w = CPUS[cpu].wake_for_gp.load(Ordering::Relaxed);
        if w != 0 && w <= g && CPUS[cpu].wake_for_gp.compare_exchange(w, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            ipi::send(cpu, ipi::Ipi::Wake);
        }
    }
    true
}

/// Fault injection (`--features inject-gp-skip-core`, never in normal builds): grace periods
/// do not wait for the highest-numbered online core, so its readers are unprotected. The
/// torture's reader pipe must catch it.
#[inline(always)]
fn injected_skip_core() -> Option<usize> {
    if cfg!(feature = "inject-gp-skip-core") && smp::num_online() > 1 {
        smp::online_cpus().last()
    } else {
        None
    }
}

/// Waits for a full grace period: returns once every core that was not idle when it was called
/// has passed a quiescent state, so every read-side section that began before has ended. The
/// caller counts as quiescent while it waits; concurrent callers share grace periods.
pub fn synchronize_rcu() {
    might_block("synchronize_rcu");
    not_in_callback("synchronize_rcu");
    let g = snapshot();
    request(g);
    eqs_enter();
    while DONE.load(Ordering::Acquire) < g {
        if !gp_try_complete() {
            callbacks_while_waiting();
            arch::cpu_relax();
        }
    }
    eqs_exit();
}

/// Starts (if needed) the grace period that covers readers running now and returns a cookie for
/// [`poll_state_synchronize_rcu`] (Linux's `start_poll_synchronize_rcu`).
pub fn start_poll_synchronize_rcu() -> u64 {
    let g = snapshot();
    request(g);
    g
}

/// Whether the grace period behind `cookie` has completed.
pub fn poll_state_synchronize_rcu(cookie: u64) -> bool {
    DONE.load(Ordering::Acquire) >= cookie
}

/// Grace periods completed so far.
pub fn completed() -> u64 {
    DONE.load(Ordering::Acquire)
}

/// Grace periods started so far.
pub fn started() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

/// Average duration of the grace periods completed while timing was on, in ns (counter time).
pub fn average_gp_ns() -> u64 {
    arch::ticks_to_ns(GP_TOTAL_TICKS.load(Ordering::Relaxed)) / GP_TIMED.load(Ordering::Relaxed).max(1)
}

// ---------------------------------------------------------------------------------------------
// Callbacks.
// ---------------------------------------------------------------------------------------------

type Callback = Box<dyn FnOnce() + Send>;

/// Callbacks waiting for one grace period (one segment of the per-core list).
struct Segment {
    gp: u64,
    cbs: VecDeque<Callback>,
}

/// A core's callbacks, segmented by the grace period each needs, in queue order: one grace
/// period serves a whole segment. Grace periods are non-decreasing except when an interrupt
/// handler's `call_rcu` lands between a task's snapshot and its push (then a later segment may
/// need an earlier grace period); segments still run in queue order, so that only delays it.
static CBLISTS: [spin::Mutex<VecDeque<Segment>>; MAX_CPUS] = [const { spin::Mutex::new(VecDeque::new()) }; MAX_CPUS];
static CBS_QUEUED: AtomicU64 = AtomicU64::new(0);
static CBS_INVOKED: AtomicU64 = AtomicU64::new(0);

/// Queues `f` on this core, to run after a full grace period, from this core's idle loop (or
/// its next `rcu_quiescent_state`), in queue order. `f` may allocate, free and call `call_rcu`.
pub fn call_rcu(f: impl FnOnce() + Send + 'static) {
    let g = snapshot();
    {
        let _irq = arch::IrqGuard::new();
        let mut l = CBLISTS[cpu_id()].lock();
        match l.back_mut() {
            Some(seg) if seg.gp == g => seg.cbs.push_back(Box::new(f)),
            _ => {
                let mut cbs: VecDeque<Callback> = VecDeque::new();
                cbs.push_back(Box::new(f));
                l.push_back(Segment { gp: g, cbs });
            }
        }
        CPUS[cpu_id()].first_cb_gp.store(l.front().map_or(u64::MAX, |s| s.gp), Ordering::Relaxed);
    }
    CBS_QUEUED.fetch_add(1, Ordering::Relaxed);
    request(g);
}

/// The grace period the oldest waiting callback of this core needs, if any.
fn first_pending_gp() -> Option<u64> {
    let g = CPUS[cpu_id()].first_cb_gp.load(Ordering::Relaxed);
    (g != u64::MAX).then_some(g)
}

/// Whether this core has callbacks whose grace period has completed.
pub fn has_ready_callbacks() -> bool {
    first_pending_gp().is_some_and(|g| g <= DONE.load(Ordering::Acquire))
}

crate::percpu! {
    /// Set while this core runs callbacks: a callback that passes a quiescent point must not
    /// start running later segments (an `rcu_barrier` marker among them) ahead of its own.
    static IN_CALLBACKS: bool = false;
}

/// Runs this core's callbacks whose grace period has completed (outside the list lock, so they
/// may queue more). Not re-entered from a callback.
pub fn process_callbacks() {
    if IN_CALLBACKS.get() {
        return;
    }
    if first_pending_gp().is_none_or(|g| g > DONE.load(Ordering::Acquire)) {
        return; // the common case: one load each, no lock
    }
    IN_CALLBACKS.set(true);
    run_ready_callbacks();
    IN_CALLBACKS.set(false);
}

fn run_ready_callbacks() {
    loop {
        let done = DONE.load(Ordering::Acquire);
        if first_pending_gp().is_none_or(|g| g > done) {
            return; // the common case: one load each, no lock
        }
        let seg = {
            let _irq = arch::IrqGuard::new();
            let mut l = CBLISTS[cpu_id()].lock();
            let seg = match l.front() {
                Some(s) if s.gp <= done => l.pop_front(),
                _ => None,
            };
            CPUS[cpu_id()].first_cb_gp.store(l.front().map_or(u64::MAX, |s| s.gp), Ordering::Relaxed);
            seg
        };
        let Some(seg) = seg else { return };
        for cb in seg.cbs {
            // Counted before it runs: when an rcu_barrier marker runs (and its waiter returns),
            // every callback before it, on this core, is already counted.
            CBS_INVOKED.fetch_add(1, Ordering::Relaxed);
            cb();
        }
    }
}

/// Callbacks queued and invoked so far (all cores).
pub fn callback_counts() -> (u64, u64) {
    (CBS_QUEUED.load(Ordering::Relaxed), CBS_INVOKED.load(Ordering::Relaxed))
}

/// Waits until every callback queued (on any core) before the call has run (Linux's
/// `rcu_barrier`): entrains a marker callback on every online core behind its existing ones (on
/// the others from their interrupt context, with `call_function_single`, as Linux does), then
/// waits, running this core's own callbacks meanwhile. Works from any core. Not from an RCU
/// callback (its own core's marker would queue behind it) or an interrupt handler: both are
/// named errors.
pub fn rcu_barrier() {
    might_block("rcu_barrier");
    if IN_CALLBACKS.get() {
        panic!("rcu_barrier called from an RCU callback on core {} (it would wait for itself)", cpu_id());
    }
    let remaining = alloc::sync::Arc::new(AtomicUsize::new(0));
    let cpus: alloc::vec::Vec<usize> = smp::online_cpus().collect();
    remaining.store(cpus.len(), Ordering::Relaxed);
    for &c in &cpus {
        let r = remaining.clone();
        let entrain = move || {
            call_rcu(move || {
                r.fetch_sub(1, Ordering::Release);
            })
        };
        if c == cpu_id() {
            entrain();
        } else {
            ipi::call_function_single(c, entrain);
        }
    }
    eqs_enter();
    while remaining.load(Ordering::Acquire) != 0 {
        if !gp_try_complete() {
            callbacks_while_waiting();
            arch::cpu_relax();
        }
    }
    eqs_exit();
}

/// Whether this core is running RCU callbacks (a callback, or code it called, is running).
pub fn in_callback() -> bool {
    IN_CALLBACKS.get()
}

// ---------------------------------------------------------------------------------------------
// Idle-loop hooks.
// ---------------------------------------------------------------------------------------------

/// Idle loop: before sleeping. Returns whether the core may sleep (no callback is ready).
pub fn idle_enter() -> bool {
    let me = cpu_id();
    let pending = first_pending_gp();
    CPUS[me].wake_for_gp.store(pending.unwrap_or(0), Ordering::Relaxed);
    eqs_enter(); // its smp_mbs include E: wake_for_gp is visible before DONE is re-read; pairs with E in gp_try_complete
    !pending.is_some_and(|g| g <= DONE.load(Ordering::Acquire))
}

/// Idle loop: after waking.
pub fn idle_exit() {
    CPUS[cpu_id()].wake_for_gp.store(0, Ordering::Relaxed);
    eqs_exit();
}

// ---------------------------------------------------------------------------------------------
// Stall detector (tick hook).
// ---------------------------------------------------------------------------------------------

static STALL_TIMEOUT_MS: AtomicU64 = AtomicU64::new(3000);
static STALLS: AtomicU64 = AtomicU64::new(0);
static LAST_STALLED: AtomicU64 = AtomicU64::new(u64::MAX);

/// Sets how long a core may go without a quiescent state during a grace period before it is
/// reported.
pub fn set_stall_timeout_ms(ms: u64) {
    STALL_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// Stalls reported so far, and the last core named.
pub fn stalls() -> (u64, Option<usize>) {
    let c = LAST_STALLED.load(Ordering::Relaxed);
    (STALLS.load(Ordering::Relaxed), (c != u64::MAX).then_some(c as usize))
}

/// What RCU hooks into the idle loop and the blocking waits (see `smp::IdleHooks`).
static IDLE_HOOKS: smp::IdleHooks = smp::IdleHooks {
    quiescent_point: rcu_quiescent_state,
    idle_enter,
    idle_exit,
    blocking_wait: |cond| wait_quiescent(cond),
    cpu_online: eqs_exit,
    cpu_dead,
};

/// Registers RCU with the layers below (at boot, on core 0, before interrupts are unmasked and
/// before the other cores start): the idle loop's hooks, the tick hook (stall detector), and
/// the interrupt entry/exit hooks.
pub fn init() {
    smp::set_idle_hooks(&IDLE_HOOKS);
    smp::tick::add_hook(tick);
    arch::exception::set_irq_context_hooks(irq_enter, irq_exit);
}

/// The tick hook: push a grace period along, and name a core that holds one up for too long.
fn tick() {
    let now = arch::counter_relaxed();
    // Sample every core's ctr: the time it last changed is when it last passed a quiescent
    // state or changed idle state (to within a tick).
    for cpu in smp::online_cpus() {
        let c = &CPUS[cpu];
        let v = c.ctr.load(Ordering::Relaxed);
        if c.seen_ctr.swap(v, Ordering::Relaxed) != v {
            c.seen_at.store(now, Ordering::Relaxed);
        }
    }
    let g = STARTED.load(Ordering::Relaxed);
    if g == DONE.load(Ordering::Relaxed) || try_complete(true) {
        return;
    }
    if TICK_SEEN_GP.swap(g, Ordering::Relaxed) != g {
        TICK_SEEN_AT.store(now, Ordering::Relaxed);
    }
    let limit = arch::counter_freq() * STALL_TIMEOUT_MS.load(Ordering::Relaxed) / 1000;
    // Timestamps written by other cores after `now` was read make these differences negative:
    // saturate to 0 (not stalled) rather than wrap.
    if now.saturating_sub(TICK_SEEN_AT.load(Ordering::Relaxed)) < limit {
        return;
    }
    let me = cpu_id();
    for cpu in smp::online_cpus() {
        let c = &CPUS[cpu];
        let v = c.ctr.load(Ordering::Relaxed);
        if v == 0 || v == g || cpu == me {
            continue;
        }
        let since = now.saturating_sub(c.seen_at.load(Ordering::Relaxed));
        if since < limit {
            continue;
        }
        if c.stall_reported.swap(g, Ordering::Relaxed) == g {
            continue; // once per stall
        }
        STALLS.fetch_add(1, Ordering::Relaxed);
        LAST_STALLED.store(cpu as u64, Ordering::Relaxed);
        let pc = ipi::report_pc(cpu, 20).unwrap_or(0);
        defmt::println!(
            "RCU stall: core {}, grace period {}, last quiescent state {} ms ago, PC={=u64:#x}",
            cpu, g, arch::ticks_to_ns(since) / 1_000_000, pc
        );
    }
}
