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
//! * **Q** (`gp_start`, `complete_one`; `rcu_quiescent_state`): `GP_SEQ` is stored with Release
//!   after each change of `STARTED` or `DONE`, and the quiescent-state slow path loads it with
//!   Acquire before reading them, so a core that records "nothing new since `GP_SEQ` = s" has
//!   read the `STARTED` and `DONE` that s stands for. The fast path's Relaxed load only decides
//!   whether to take the slow path (a stale value delays a report, as a stale `STARTED` did).
//! * **O** (`smp::secondary_online`): a core coming online publishes its `ONLINE` bit, then
//!   `smp_mb`, then runs its first reader. The completer reads `ONLINE` after D' (through
//!   [`smp::online_cpus`](crate::smp::online_cpus)): a store-buffering pair with D, so either
//!   the completer sees the new core (and waits for its `ctr`) or the new core's readers see
//!   the updater's removal.
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

mod callbacks;
mod gp;
mod qs;
mod read;
mod stall;

pub use callbacks::{call_rcu, callback_counts, has_ready_callbacks, in_callback, process_callbacks, rcu_barrier};
pub use gp::{
    average_gp_ns, completed, gp_try_complete, poll_state_synchronize_rcu, set_gp_timing, start_poll_synchronize_rcu,
    started, synchronize_rcu,
};
pub use qs::{
    cpu_dead, eqs_enter, eqs_exit, idle_enter, idle_exit, irq_enter, irq_exit, might_block, rcu_qs,
    rcu_quiescent_state, wait_quiescent,
};
pub use read::{
    assert_not_in_reader, assert_watching, in_read_section, rcu_assign_pointer, rcu_dereference, rcu_is_watching,
    rcu_read_lock, rcu_read_unlock, read, ReadGuard,
};
pub use stall::{set_stall_timeout_ms, stalls};

use crate::{arch, smp};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

// Grace-period numbers start at 1: a core's `ctr` of 0 means "idle", so no grace period may
// ever be numbered 0 (a core that left idle before the first grace period would look idle).
static STARTED: AtomicU64 = AtomicU64::new(1);
static DONE: AtomicU64 = AtomicU64::new(1);
static REQUESTED: AtomicU64 = AtomicU64::new(1);
/// Changes (by one, under GP_LOCK) whenever STARTED or DONE does: the quiescent-state fast path
/// compares it with the value its core last saw, one load instead of reading both (and the
/// core's `ctr` and callback list). See **Q**.
static GP_SEQ: AtomicU64 = AtomicU64::new(0);
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

impl RcuCpu {
    fn new() -> Self {
        RcuCpu {
            ctr: AtomicU64::new(0),
            seen_ctr: AtomicU64::new(0),
            seen_at: AtomicU64::new(0),
            first_cb_gp: AtomicU64::new(u64::MAX),
            wake_for_gp: AtomicU64::new(0),
            stall_reported: AtomicU64::new(0),
        }
    }
}

/// One `T` per core this run set up, allocated once at [`init`] (so 512 possible cores cost
/// nothing until they are present), indexed by core number like an array.
struct PerCore<T: 'static> {
    ptr: AtomicPtr<T>,
    len: AtomicUsize,
}

impl<T> PerCore<T> {
    const fn new() -> Self {
        PerCore { ptr: AtomicPtr::new(core::ptr::null_mut()), len: AtomicUsize::new(0) }
    }
    /// Allocates `n` elements (core 0, at init, before the other cores start: the dsb before
    /// each CPU_ON publishes the pointer, so Relaxed suffices).
    fn init(&self, n: usize, f: impl Fn() -> T) {
        let v: Vec<T> = (0..n).map(|_| f()).collect();
        self.ptr.store(Box::leak(v.into_boxed_slice()).as_mut_ptr(), Ordering::Relaxed);
        self.len.store(n, Ordering::Relaxed);
    }
}

impl<T> core::ops::Index<usize> for PerCore<T> {
    type Output = T;
    #[inline(always)]
    fn index(&self, cpu: usize) -> &T {
        let n = self.len.load(Ordering::Relaxed);
        assert!(cpu < n, "rcu: core {} has no per-core state ({} set up)", cpu, n);
        // SAFETY: `init` stored a leaked slice of `n` elements, never freed; cpu < n.
        unsafe { &*self.ptr.load(Ordering::Relaxed).add(cpu) }
    }
}

/// Per-core state: one 64-byte line per core present.
static CPUS: PerCore<RcuCpu> = PerCore::new();

/// What RCU hooks into the idle loop and the blocking waits (see `smp::IdleHooks`).
static IDLE_HOOKS: smp::IdleHooks = smp::IdleHooks {
    quiescent_point: rcu_quiescent_state,
    idle_enter,
    idle_exit,
    blocking_wait: |cond| wait_quiescent(cond),
    might_block: qs::might_block_here,
    cpu_online: eqs_exit,
    cpu_dead,
};

/// Registers RCU with the layers below (at boot, on core 0, before interrupts are unmasked and
/// before the other cores start): the idle loop's hooks, the tick hook (stall detector), and
/// the interrupt entry/exit hooks.
pub fn init() {
    let n = smp::num_possible();
    CPUS.init(n, RcuCpu::new);
    callbacks::init(n);
    smp::set_idle_hooks(&IDLE_HOOKS);
    smp::tick::add_hook(stall::tick);
    arch::exception::set_irq_context_hooks(irq_enter, irq_exit);
}
