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
//! idle or passed a quiescent point after `g` started. Nobody scans for that on every report:
//! a two-level combining tree (`tree.rs`, after Linux's Tree RCU) collects the reports. Leaves
//! of 16 cores ([`Config::leaf_size`] changes it), each with a lock and a
//! mask of its cores that still owe `g`, under a root whose mask holds the leaves that still
//! owe. The core that starts `g` sets the masks up, reading every core's `ctr` once and leaving
//! out those idle or already at `g` (O(N) per grace period); every other report is the core's
//! own (a quiescent point, going idle, an interrupt handler returning to an idle core, a core
//! parking for good) and clears one bit under one leaf lock, plus one under `GP_LOCK` for the
//! last core of a leaf: O(1). The report that empties the root completes `g` on the spot.
//! Nothing needs a dedicated grace-period thread, and nothing polls. The choice against
//! liburcu's "the updater scans" is argued in `tree.rs`.
//!
//! A caller that needs a grace period that *starts after now* takes the snapshot
//! `STARTED + 1` (Linux's `rcu_seq_snap`): if one is in progress it began before the caller and
//! may not cover the caller's readers, so the caller needs the next one. Concurrent callers with
//! the same snapshot share one grace period, and a caller never waits for more than two.
//!
//! # Barriers (labels used in the code)
//!
//! * **A** (`rcu_qs`, `eqs_enter`, `cpu_dead`): `smp_mb` before a core publishes a quiescent
//!   state: its earlier read-side accesses are complete before the report is seen. Pairs with
//!   **B**.
//! * **B** (`tree::setup`, `tree::report_leaf`, `tree::force_pass`): the reports reach `DONE`
//!   through a chain of leaf locks and `GP_LOCK` (each reporter stores its `ctr` after A and
//!   before its leaf unlock); an `smp_mb` after taking `GP_LOCK` and before `DONE` makes that
//!   order hold for every observer, not just the next lock holder (Linux's
//!   `smp_mb__after_unlock_lock`). The set-up and `gp_try_complete`'s pass have their own
//!   `smp_mb` between their `ctr` reads and anything that may complete the grace period.
//!   Whoever sees the grace period complete (and frees memory) is then ordered after all the
//!   readers it waited for. Pairs with **A**; the waiter's Acquire load of `DONE` continues it.
//!   On ARMv8 alone B is redundant: every `ctr` read is followed by a release (a leaf unlock,
//!   `GP_LOCK`'s unlock, or `DONE`'s Release store), and ARMv8's release/acquire is RCsc and
//!   other-multi-copy atomic, so the chain already orders the readers for every observer (Linux's
//!   `smp_mb__after_unlock_lock` is a no-op on arm64). It is kept because the argument must also
//!   hold in the C11 model loom checks, where a release/acquire chain is not cumulative for a
//!   third observer; it costs one DMB per leaf per grace period.
//! * **C** (`rcu_qs`, `eqs_exit`): `smp_mb` after a core stores its new `ctr` and before any new
//!   reader runs. Pairs with **D**: a store-buffering pair, so either the grace-period starter's
//!   set-up sees the new `ctr` (the grace period's own number: the core is left out, its readers
//!   began after the start; or an older one: the grace period waits for it), or this core's new
//!   readers see everything the updater did before starting the grace period (the removal). In
//!   `rcu_qs`, A already lies between the load of `STARTED` and the `ctr` store, so C there only
//!   repeats that order (the loom models cannot show it is needed); in `eqs_exit`, where nothing
//!   separates the load and the store, C is what gives it. `eqs_enter`, `irq_exit` and
//!   `cpu_dead` have the same `smp_mb` after `ctr = 0`, before reading `STARTED`: either the set-up
//!   sees the core idle and leaves it out, or the core sees the new grace period and reports.
//! * **D** (`gp_start`, `snapshot`): `smp_mb` between an updater's removal and its snapshot of
//!   `STARTED`, and after storing a new `STARTED` (on the core that starts the grace period),
//!   before the tree's set-up reads `ONLINE` and the cores' `ctr`. `gp_try_complete` may read
//!   them again from any core (a test's push), so it loads `STARTED` with Acquire
//!   (**D'**, `tree::force_pass`) before reading the cores' `ctr`: a `ctr` it reads is then not
//!   older than the start of the grace period it reports for. Pairs with **C**.
//! * **E** (`gp::after_complete`, `idle_enter`): `smp_mb` between publishing `DONE` and reading which
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
//! * **Q** (`gp_start`, `complete_locked`; `rcu_quiescent_state`): `GP_SEQ` is stored with Release
//!   after each change of `STARTED` or `DONE`, and the quiescent-state slow path loads it with
//!   Acquire before reading them, so a core that records "nothing new since `GP_SEQ` = s" has
//!   read the `STARTED` and `DONE` that s stands for. The fast path's Relaxed load only decides
//!   whether to take the slow path (a stale value delays a report, as a stale `STARTED` did).
//! * **O** (`smp::secondary_online`): a core coming online publishes its `ONLINE` bit, then
//!   `smp_mb`, then runs its first reader. The tree's set-up reads `ONLINE` after D (through
//!   [`online_cpus`](quiescent_platform::online_cpus)): a store-buffering pair with D, so either
//!   the grace period waits for the new core (its bit is in its leaf) or the new core's readers
//!   see the updater's removal. See `tree.rs` for cores coming online mid-grace-period and
//!   parking for good.
//!
//! Readers use [`rcu_dereference`] (a plain load: on ARMv8 the address dependency from the
//! pointer to the data orders the two loads, so no read barrier is needed; only Alpha would) and
//! updaters [`rcu_assign_pointer`] (a store-release, STLR: the initialisation of the new object is
//! visible before the pointer; pairs with the reader's address dependency).
//!
//! # Interrupts
//!
//! A core in an extended quiescent state (a blocking wait: [`wait_quiescent`],
//! [`synchronize_rcu`], [`rcu_barrier`], the platform's `wait_event`) keeps interrupts enabled, and grace
//! periods do not wait for it. Its interrupt handlers must still be readers (a tick hook or a
//! `call_function_single` closure doing a lookup or a percpu_ref get/put), so, as Linux's
//! `ct_irq_enter`/`ct_irq_exit` do, every IRQ runs [`platform::irq_enter`] before its handler and
//! [`platform::irq_exit`] after (registered with `arch::exception` at boot): if the interrupted core was in
//! an extended quiescent state, `irq_enter` leaves it for the handler (I) and `irq_exit` returns
//! to it (J). A core that is not in one is a reader already, and nothing changes. Handlers do not
//! nest (they run with IRQs masked).
//!
//! Which operations may run where is a matter of types (see "Contexts" below): a handler gets
//! an [`AtomicCtx`], so the blocking operations, which take `&mut Ctx`, do not type-check there.
//!
//! | | interrupt handler, RCU callback (`&AtomicCtx`) | read-side section (guard alive) | `wait_event` condition (no context) |
//! |---|---|---|---|
//! | [`read`], `RcuList::iter`, `rcu_dereference` | yes | yes (nests) | no: needs a context |
//! | `call_rcu`, dropping a [`list::Removed`], `start_poll_synchronize_rcu` | yes | yes | yes (need none) |
//! | percpu_ref `get`/`put`/`tryget`/`tryget_live`/`kill` | yes | yes | no: need `&AtomicCtx` |
//! | percpu-rwsem `down_read_trylock`, `ReadGuard::unlock` | yes | yes | no: need `&AtomicCtx` |
//! | dropping a lock's read guard (percpu-rwsem: the slow path where RCU does not watch) | yes | yes | yes |
//! | `rcu_quiescent_state`, `synchronize_rcu`, `rcu_barrier`, `wait_quiescent`, `smp::call_on`, `Completion::wait`, lock waits, percpu_ref mode changes | no: need `&mut Ctx` | no: the guard borrows the context | no: the wait holds it `&mut` |
//!
//! The debug builds' run-time checks (`might_block`, the reader nesting count, "not watching")
//! stay as a second line, for code that forges a context with `unsafe`.
//!
//! The grace-period lock, the tree's leaf locks and the callback lists are locked with
//! interrupts masked, so a handler never spins on a lock the code it interrupted holds (so
//! `irq_exit` and `cpu_dead` may report from a handler), and a core holding another
//! IRQ-masked lock (percpu_ref's, around `call_rcu`) never waits for a holder that an interrupt
//! keeps from releasing it.
//!
//! # Contexts: quiescent points the borrow checker can see
//!
//! QSBR's read side is no instruction, so no run-time check can stop a reference from living
//! across a quiescent point in a release build. The types do it instead (the platform's `Ctx` and `AtomicCtx`):
//!
//! * Each thread of execution that may block holds a [`Ctx`]: the image's main and each test
//!   case (from the runtime), each work item (from the idle loop, which passes a quiescent point
//!   between items, so no item's borrows reach it). Everything that may pass a quiescent point
//!   takes `&mut Ctx`: [`rcu_quiescent_state`], [`synchronize_rcu`], [`rcu_barrier`],
//!   [`wait_quiescent`], `Removed::free_after_sync`, `wait_event`, `Completion::wait`,
//!   `smp::call_on`, `ipi::call_function_single`, the blocking lock acquisitions and percpu_ref's
//!   waiting mode changes.
//! * A read guard ([`read`]) borrows the context shared; `RcuList::iter`'s items borrow the guard.
//!   So `let o = LIST.iter(&g).next(); rcu_quiescent_state(ctx); use(o)` is a borrow error
//!   (E0502), as is the same across `synchronize_rcu`, and a leaked guard (`Box::leak`) still
//!   borrows the context. `mem::forget` of a guard whose references are in use is a move out of
//!   a borrowed value.
//! * Interrupt handlers (tick hooks, `call_function_single` closures) and RCU callbacks get an
//!   [`AtomicCtx`]: they may read (and run the fast paths) but hold nothing `&mut` to block with.
//! * The fast paths that rely on RCU watching this core (percpu_ref's get/put, percpu-rwsem's
//!   reader) take `&AtomicCtx`, which `&Ctx` and `&ReadGuard` coerce to; a `wait_event` or
//!   `wait_quiescent` condition runs while RCU does not watch and cannot borrow the context the
//!   wait holds `&mut`.
//! * Neither context can be made by safe code or leave its core (both `!Send` and `!Sync`).
//!
//! The cost: nothing at run time. Both types are empty, a reference to one is never read, and
//! after inlining neither appears in the code (`make bench` checks it: a read-side section is 0
//! instructions). The price is in the signatures: blocking functions take a `&mut Ctx`
//! parameter, as Linux code carries `might_sleep()` annotations and Rust-for-Linux relies on a
//! separate tool (klint) to check them.
//!
//! Compared with its peers: liburcu's `rcu_read_lock`/`rcu_quiescent_state` check nothing (a
//! pointer used after `rcu_quiescent_state` is the caller's bug); crossbeam-epoch's `pin()`
//! returns a `Guard` and ties `Shared<'g, T>` to it, but a pinned thread cannot be made to pass a
//! quiescent point against its will because its "quiescent point" is the guard's drop: the
//! guard alone suffices there, where in QSBR the quiescent points are calls anywhere in the
//! code, so it is the context, not the guard, that has to be borrowed; Linux Rust's `rcu::Guard`
//! ties references to the guard but cannot stop a sleeping call inside the section (klint
//! does, out of tree). Asterinas checks at run time (`might_sleep`-style guards); here the check
//! is the borrow checker's, and costs nothing.
//!
//! The raw `rcu_read_lock`/`rcu_read_unlock` remain, `unsafe`, for code that builds its own
//! structures; `rcu_dereference` returns a raw pointer (dereferencing it is the `unsafe` step).
//! `tests/compile-fail/` holds the snippets `make test` checks fail to compile.
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

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

extern crate alloc;
// The loom model (`--cfg loom`) runs on the host: its per-core statics are loom thread-locals.
#[cfg(loom)]
extern crate std;

/// The machine, through the platform interface (the name the algorithms use for it).
use quiescent_platform as machine;

pub mod cell;
pub mod list;

mod callbacks;
mod gp;
mod qs;
mod read;
mod stall;
mod tree;

// The user API: read sections, publishing and loading pointers, quiescent states, waiting for
// grace periods, callbacks. Everything that may pass a quiescent point takes `&mut Ctx`.
pub use crate::machine::{AtomicCtx, Ctx};
pub use callbacks::{call_rcu, call_rcu_head, in_callback, kfree_rcu, rcu_barrier, RcuCallback, RcuHead, RcuHeaded};
pub use gp::{
    cond_synchronize_rcu, get_completed_synchronize_rcu, get_state_synchronize_rcu, poll_state_synchronize_rcu,
    start_poll_synchronize_rcu, synchronize_rcu,
};
pub use qs::{might_block, rcu_quiescent_state, wait_quiescent};
pub use read::{
    assert_not_in_reader, assert_watching, in_read_section, rcu_assign_pointer, rcu_dereference, rcu_is_watching,
    rcu_read_lock, rcu_read_unlock, read, ReadGuard,
};

use qs::{
    cpu_dead, eqs_exit, idle_enter, idle_exit, idle_needs_tick, irq_enter, irq_exit, rcu_quiescent_state as qs_hook,
};

/// Statistics and tuning: grace periods and callbacks counted, stalls reported, the stall
/// timeout, grace-period timing, and a push for the grace period in progress (for tests). None
/// of these can make a grace period end early.
pub mod stats {
    pub use super::callbacks::{callback_counts, has_ready_callbacks};
    pub use super::gp::{average_gp_ns, completed, gp_try_complete, set_gp_timing, started};
    pub use super::stall::{set_stall_timeout_ms, stalls};
    pub use super::tree::leaf_size;
}

/// The hooks the platform calls RCU through: the idle loop's and the interrupt entry's (the
/// firmware registers them in [`init`]; the loom models call them directly). Each
/// changes whether grace periods wait for this core, so each is `unsafe`: called anywhere else,
/// it would let a grace period end under a reader.
pub mod platform {
    /// Leaves RCU's view of this core (before a blocking wait or a sleep): grace periods stop
    /// waiting for it.
    ///
    /// Context: the kernel's idle loop / blocking waits only.
    ///
    /// # Safety
    /// This core holds no reference obtained under RCU until the matching [`eqs_exit`], and runs
    /// no reader meanwhile (outside an interrupt handler, which `irq_enter` makes a reader).
    pub unsafe fn eqs_enter() {
        super::qs::eqs_enter()
    }

    /// Makes this core a reader again after [`eqs_enter`].
    ///
    /// Context: the kernel's idle loop / blocking waits / core bring-up only.
    ///
    /// # Safety
    /// Pairs with an earlier `eqs_enter` on this core (or brings a core online).
    pub unsafe fn eqs_exit() {
        super::qs::eqs_exit()
    }

    /// The idle loop's sleep: [`eqs_enter`] and a note of the callbacks waiting. Returns whether
    /// the core may sleep.
    ///
    /// Context: the kernel's idle loop only, interrupts masked.
    ///
    /// # Safety
    /// As `eqs_enter`, with interrupts masked, paired with [`idle_exit`].
    pub unsafe fn idle_enter() -> bool {
        super::qs::idle_enter()
    }

    /// After the idle sleep.
    ///
    /// Context: the kernel's idle loop only.
    ///
    /// # Safety
    /// Pairs with `idle_enter` on this core.
    pub unsafe fn idle_exit() {
        super::qs::idle_exit()
    }

    /// Interrupt entry: makes the handler a reader if the core was in an extended quiescent
    /// state. Returns the token for [`irq_exit`].
    ///
    /// Context: the kernel's interrupt entry only.
    ///
    /// # Safety
    /// Only at the entry of an interrupt handler, paired with `irq_exit` at its end.
    pub unsafe fn irq_enter() -> bool {
        super::qs::irq_enter()
    }

    /// Interrupt exit.
    ///
    /// Context: the kernel's interrupt entry only.
    ///
    /// # Safety
    /// Only at the end of the handler whose `irq_enter` returned `was_idle`.
    pub unsafe fn irq_exit(was_idle: bool) {
        super::qs::irq_exit(was_idle)
    }

    /// This core stops for good: grace periods stop waiting for it.
    ///
    /// Context: the kernel's parking path only, interrupts masked (possibly inside a handler).
    ///
    /// # Safety
    /// The core never runs a reader again (it parks with interrupts masked).
    pub unsafe fn cpu_dead() {
        super::qs::cpu_dead()
    }
}

use crate::machine::{AtomicBool, AtomicU64, IrqGuard, Mutex, MutexGuard};

machine::global! {
    // Grace-period numbers start at 1: a core's `ctr` of 0 means "idle", so no grace period may
    // ever be numbered 0 (a core that left idle before the first grace period would look idle).
    static STARTED: AtomicU64 = AtomicU64::new(1);
    static DONE: AtomicU64 = AtomicU64::new(1);
    static REQUESTED: AtomicU64 = AtomicU64::new(1);
    /// Changes (by one, under GP_LOCK) whenever STARTED or DONE does: the quiescent-state fast
    /// path compares it with the value its core last saw, one load instead of reading both (and
    /// the core's `ctr` and callback list). See **Q**.
    static GP_SEQ: AtomicU64 = AtomicU64::new(0);
    /// Serialises starting and completing grace periods. Always held with interrupts masked
    /// (Linux's `raw_spin_lock_irqsave` on its rcu_node locks): an interrupt handler may take it
    /// (a `call_rcu` from a handler requests a grace period), and other IRQ-masked locks are held
    /// while taking it (percpu_ref's lock around `call_rcu`), so a holder must never be
    /// interrupted.
    static GP_LOCK: Mutex<()> = Mutex::new(());
    /// Set by `init`: a grace period started before it would wait for no reader (no core
    /// reports, none is watched), so `gp::request` refuses by name.
    static INITIALISED: AtomicBool = AtomicBool::new(false);
}

/// GP_LOCK with interrupts masked; fields drop in order, so the lock is released first.
struct GpLocked {
    _g: MutexGuard<'static, ()>,
    _irq: IrqGuard,
}

fn gp_lock() -> GpLocked {
    let irq = IrqGuard::new();
    GpLocked { _g: GP_LOCK.lock(), _irq: irq }
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

machine::percpu_shared! {
    /// In each core's per-cpu area (Linux's per-cpu `rcu_data`): sized by the cores present.
    static CPUS: RcuCpu = RcuCpu {
        ctr: AtomicU64::new(0),
        seen_ctr: AtomicU64::new(0),
        seen_at: AtomicU64::new(0),
        first_cb_gp: AtomicU64::new(u64::MAX),
        wake_for_gp: AtomicU64::new(0),
        stall_reported: AtomicU64::new(0),
    };
}

/// What RCU hooks into the idle loop and the blocking waits (the platform's `IdleHooks`).
static IDLE_HOOKS: machine::IdleHooks = machine::IdleHooks {
    quiescent_point: qs_hook,
    idle_enter,
    idle_needs_tick,
    idle_exit,
    blocking_wait: |cond| qs::wait_quiescent_inner(cond),
    might_block: qs::might_block_here,
    cpu_online: eqs_exit,
    cpu_dead,
};

/// RCU's settings at boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// Cores per leaf of the combining tree (Linux's `rcu_fanout_leaf`): `None` for 16. Clamped
    /// to 1..=64, and raised to fit the cores present in 64 leaves; [`stats::leaf_size`] says
    /// what was chosen.
    pub leaf_size: Option<usize>,
}

/// Registers RCU with the layers below: the idle loop's hooks, the tick hook (stall detector),
/// and the interrupt entry/exit hooks.
///
/// Context: boot only, core 0, before the other cores start.
///
/// # Safety
/// Once, at boot, on core 0, before interrupts are unmasked and before the other cores start
/// (it resets the grace-period tree).
pub unsafe fn init(config: Config) {
    tree::init(config.leaf_size);
    // SAFETY: at boot, before the other cores start (the caller's contract); these hooks are
    // RCU's own.
    unsafe {
        machine::set_idle_hooks(&IDLE_HOOKS);
        machine::set_irq_context_hooks(irq_enter, irq_exit);
    }
    machine::add_tick_hook(stall::tick);
    // Release: the tree and the hooks before the flag; pairs with the Acquire in gp::request.
    INITIALISED.store(true, machine::Ordering::Release);
}
