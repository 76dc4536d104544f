//! Linux's `percpu_ref` (`lib/percpu-refcount.c`): a reference count whose get and put touch
//! only the running core's counter until the owner starts shutting the object down.
//!
//! # The idea
//!
//! While the ref is *live*, `get`/`put` add `+1`/`-1` to this core's `u64` counter (from the
//! dynamic per-cpu allocator, 8 bytes per core) with [`machine::this_cpu_add_u64`]: no barrier, no
//! shared cache line written. Nobody can tell when the count reaches zero in this mode, and
//! nobody needs to: the owner holds the *initial* reference until it calls [`PercpuRef::kill`].
//! `kill` switches the ref to *atomic* mode (one shared `AtomicI64`), waits for a grace period
//! (asynchronously, with `call_rcu`), sums the per-core counters into the atomic count and drops
//! the initial reference; from then on every put tests for zero and the last one runs `release`.
//!
//! # The word
//!
//! As in Linux, the mode and the counter address are one word (`percpu_count_ptr`), read once
//! per operation with a Relaxed load:
//!
//! ```text
//!   63                                                   2     1      0
//!  [ template address of this ref's per-cpu u64 counter | DEAD | ATOMIC ]
//!
//!   ATOMIC=0 DEAD=0   percpu mode: get/put = this_cpu_add(word, +-n)
//!   ATOMIC=1 DEAD=0   atomic mode (switch_to_atomic, INIT_ATOMIC): get/put on `count`
//!   ATOMIC=1 DEAD=1   dying/dead (kill, INIT_DEAD): as atomic, and tryget_live fails
//!   ATOMIC=0 DEAD=1   never stored (DEAD is set in the same store as ATOMIC, or later)
//! ```
//!
//! The template address is 4-byte aligned (the allocator's granule), so the two low bits are free.
//! The fast path therefore tests only ATOMIC and, when it is clear, passes the word unchanged as
//! the counter address.
//!
//! # Why the fast path needs no barrier: an implicit RCU read-side section
//!
//! This firmware's RCU is quiescent-state based: a core is a reader at every instruction between
//! two quiescent points (the idle loop between work items, a blocking wait). A get or put never
//! contains a quiescent point, so the load of the word and the `this_cpu_add` that follows are
//! always inside one read-side section. The mode switch sets ATOMIC and then waits for a grace
//! period before summing the counters: when the grace period ends, every get/put that loaded
//! the old (percpu) word has finished its add (RCU's barrier **A** in `rcu_qs`, paired with **B**
//! on the way to `DONE` (RCU's combining tree) and the Acquire load of `DONE` before callbacks run, orders those adds
//! before the summing reads), and every later get/put sees ATOMIC. The killer pays a grace period
//! so the fast path pays nothing. (Debug builds also wrap the fast path in
//! `rcu_read_lock`/`rcu_read_unlock`, which makes a quiescent point inside it a reported error,
//! and names a fast path that runs while RCU is not watching the core; both are free in release
//! builds.)
//!
//! In an interrupt handler the same holds: the IRQ entry makes a handler that interrupts a core
//! in an extended quiescent state (a blocking wait) a reader for its duration (`rcu::irq_enter`),
//! so get/put/tryget/tryget_live/kill are safe there, and a put that runs `release` may call
//! `call_rcu`.
//!
//! # What may block
//!
//! The mode changes wait for a pending switch to atomic mode, as an RCU extended quiescent
//! state (they pass quiescent points): `switch_to_atomic`, `switch_to_atomic_sync`,
//! `switch_to_percpu`, `resurrect`, `reinit` and `kill_and_confirm`. They must not run inside a
//! read-side section (a named error in debug builds, even when no switch is pending) or an
//! interrupt handler (always a named error), and must not have to wait from an RCU callback (a
//! named error: the switch's callback may be queued behind the running one). `kill`, `exit` and
//! the fast paths never block. The waiting happens in one place, `locked_when_idle` (Linux's
//! `__percpu_ref_switch_mode`), which returns the ref's lock held with no switch pending.
//!
//! # The count and its bias
//!
//! `count` is an `AtomicI64`. In percpu mode (and while a switch to atomic mode is waiting for
//! its grace period) it carries [`PERCPU_COUNT_BIAS`] = 2^62, so puts that reach the atomic
//! count before the per-core counters are folded in can never take it to zero. The RCU callback
//! then adds `sum - BIAS` in one atomic add: the per-core counters are `u64` (Linux's
//! `unsigned long`) and wrap individually, but only their wrapping sum matters, and it equals
//! (mod 2^64) the gets minus the puts done in percpu mode since the counters were last zeroed.
//! That contribution lies in `(-2^62, 2^62)`, since no run can make 2^62 references (forgotten
//! ones included: `mem::forget` is safe, so a 32-bit counter could be wrapped by safe code and
//! release the object under a live reference), so the sum is read as an `i64`. Result: `count`
//! = the true count.
//!
//! # Barriers and orderings (labels used in the code)
//!
//! * **G** (switch to atomic): the ATOMIC store is followed by `call_rcu`, whose snapshot has an
//!   `smp_mb` (RCU's **D**); the summing callback runs after a full grace period (RCU's **A**/**B**).
//!   This is the whole synchronisation between the fast path and the switch.
//! * **R** (`switch_to_percpu`): the per-core counters are zeroed, then the word without ATOMIC is
//!   stored with Release (Linux's `smp_store_release`). Pairs with the fast path's *address
//!   dependency*: the counter address is the loaded word, so the counter access is ordered after
//!   the word load and sees the zeroes (Linux's `READ_ONCE` in `__ref_is_percpu`).
//! * **Z** (atomic-mode put): Release on the decrement orders the putter's accesses to the object
//!   before it; Acquire on the decrement that reaches zero orders `release` after every other
//!   holder's accesses (their decrements form a release sequence that this RMW reads).
//! * **F** (fold): AcqRel on the `count += sum - BIAS` RMW carries the percpu-mode puts (ordered
//!   before it by the grace period) into that release sequence.
//! * **T** (tryget): Acquire on a successful increment-unless-zero, so the new holder sees what
//!   a concurrent `reinit` (or the creator) wrote before making the count non-zero.
//! * **S** (`switching` flag): cleared with Release after the fold and the confirmation; the
//!   Acquire load in the waiters (`switch_to_atomic_sync` and the slow paths that must wait for a
//!   switch) makes the folded count and everything `confirm` did visible to them.
//!
//! Mode changes are serialised by the ref's own lock (Linux uses one global
//! `percpu_ref_switch_lock`); the lock is never held while `release` or `confirm` runs.
//!
//! # Misuse
//!
//! Misuse is reported by name through the platform's log (`warn!`/`error!`), counted per ref
//! ([`PercpuRef::misuse_count`]) and globally ([`misuse_reports`]), and handled without a crash
//! or corruption; see [`Misuse`].
//!
//! # Differences from Linux
//!
//! * `kill_and_confirm` on a ref that is already in atomic mode calls `confirm` after a grace
//!   period (Linux calls it at once), so when `confirm` runs no `tryget_live` that loaded the
//!   word before DEAD was set can still be in flight on any core.
//! * `switch_to_percpu` works on any live ref that still has its per-cpu counters (Linux also
//!   requires ALLOW_REINIT); on a dying or released ref it is ignored with a warning (Linux
//!   defers it to the next `reinit`).
//! * `resurrect` and `reinit` return named errors instead of WARNing and carrying on.
//!
//! # Layout
//!
//! This file: the word, [`Flags`], [`PercpuRef`] with `init` and the fast paths (and their
//! atomic-mode slow paths). `mode.rs`: the mode changes (kill, switches, resurrect/reinit, exit)
//! and the RCU callback that folds the per-core counters. `misuse.rs`: the named errors and
//! misuse reports.

mod misuse;
mod mode;
mod owned;

pub use misuse::{misuse_reports, Misuse, PercpuRefError};
pub use owned::{Counted, Mode, PercpuObj};

use crate::machine::{self, AtomicBool, AtomicCtx, AtomicI64, AtomicU32, AtomicUsize, Mutex, Ordering, PercpuBox};
use crate::rcu;
use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use misuse::MISUSE_KINDS;
use mode::Slow;

/// Word bit 0: get/put use the atomic count.
const ATOMIC: usize = 1 << 0;
/// Word bit 1: the ref is dying or dead (killed); `tryget_live` fails.
const DEAD: usize = 1 << 1;
const FLAG_MASK: usize = ATOMIC | DEAD;

/// Added to the atomic count while per-core counters may hold part of the count, so the atomic
/// count cannot reach zero before they are folded in (Linux's `PERCPU_COUNT_BIAS`). 2^62 keeps
/// `count` positive in an `i64` with room for any percpu contribution a run can make.
pub const PERCPU_COUNT_BIAS: i64 = 1 << 62;

/// Bytes of per-cpu memory one [`PercpuRef`] uses on each core (one `u64` counter).
pub const PERCPU_BYTES_PER_CPU: usize = core::mem::size_of::<u64>();

/// Flags for [`PercpuRef::init`] (combine with `|`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    /// Start live, in percpu mode, with one (the initial) reference.
    pub const NONE: Flags = Flags(0);
    /// Start in atomic mode with one reference; stays atomic until `switch_to_percpu`.
    /// Implies [`Flags::ALLOW_REINIT`] (as in Linux).
    pub const INIT_ATOMIC: Flags = Flags(1 << 0);
    /// Start dead in atomic mode with a count of 0; `reinit` makes it live.
    /// Implies [`Flags::ALLOW_REINIT`] (as in Linux).
    pub const INIT_DEAD: Flags = Flags(1 << 1);
    /// Keep the per-cpu counters after `kill`, so `resurrect`/`reinit`/`switch_to_percpu` can
    /// bring the ref back to percpu mode. Without it the counters are freed once the kill's
    /// grace period has passed.
    pub const ALLOW_REINIT: Flags = Flags(1 << 2);

    /// Whether every flag of `other` is set in `self`.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

type Confirm = Box<dyn FnOnce() + Send>;
type Release = Box<dyn Fn(&PercpuRef) + Send + Sync>;

/// A per-cpu reference count (Linux's `struct percpu_ref`). Created by [`PercpuRef::init`] in an
/// `Arc` (its RCU callback keeps the ref alive while a mode switch is pending).
pub struct PercpuRef {
    /// Template address of the per-cpu counter | DEAD | ATOMIC (see the module docs).
    word: AtomicUsize,
    /// The atomic count (with [`PERCPU_COUNT_BIAS`] while per-core counters are in use).
    count: AtomicI64,
    /// A switch to atomic mode is waiting for its grace period (Linux: `confirm_switch != NULL`).
    switching: AtomicBool,
    allow_reinit: bool,
    slow: Mutex<Slow>,
    release: Release,
    /// This ref's own `Arc`, for the RCU callback.
    me: Weak<PercpuRef>,
    misuse: [AtomicU32; MISUSE_KINDS],
}

impl PercpuRef {
    /// Creates a ref (Linux's `percpu_ref_init`): by default live, in percpu mode, holding the
    /// initial reference, which [`kill`](Self::kill) drops. `release` runs once the count reaches
    /// zero after `kill`: from the RCU callback that folds the counters or from the last put, on
    /// whichever core that happens; it must not block. Fails (no panic) if the per-cpu counter
    /// cannot be allocated.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn init(
        release: impl Fn(&PercpuRef) + Send + Sync + 'static,
        flags: Flags,
    ) -> Result<Arc<PercpuRef>, PercpuRefError> {
        let pcpu = PercpuBox::new(0u64).map_err(PercpuRefError::Alloc)?;
        let addr = pcpu.template_addr();
        assert!(addr & FLAG_MASK == 0 && addr != 0, "percpu_ref: counter address {:#x} not 4-byte aligned", addr);
        let dead = flags.contains(Flags::INIT_DEAD);
        let atomic = dead || flags.contains(Flags::INIT_ATOMIC);
        let (mut word, mut count) = (addr, 0i64);
        if atomic {
            word |= ATOMIC;
        } else {
            count += PERCPU_COUNT_BIAS;
        }
        if dead {
            word |= DEAD;
        } else {
            count += 1; // the initial reference
        }
        Ok(Arc::new_cyclic(|me| PercpuRef {
            word: AtomicUsize::new(word),
            count: AtomicI64::new(count),
            switching: AtomicBool::new(false),
            allow_reinit: atomic || flags.contains(Flags::ALLOW_REINIT),
            slow: Mutex::new(Slow {
                pcpu: Some(pcpu),
                confirm: None,
                force_atomic: flags.contains(Flags::INIT_ATOMIC),
                exit_pending: false,
            }),
            release: Box::new(release),
            me: me.clone(),
            misuse: machine::atomic_array![AtomicU32::new(0); MISUSE_KINDS],
        }))
    }

    // -----------------------------------------------------------------------------------------
    // Fast paths. Each loads the word once (Relaxed) and, in percpu mode, adds to this core's
    // counter with the restartable ldr/add/str: no barrier, no shared write. Correct because
    // the whole operation is one implicit RCU read-side section (QSBR: no quiescent point
    // inside), which the mode switch waits out (G). The context argument proves this core is
    // watched (no code has one where it is not); the read guard only counts nesting in debug
    // builds and is free in release builds.
    // -----------------------------------------------------------------------------------------

    /// Takes a reference (Linux's `percpu_ref_get`). The caller must already hold one (or the
    /// ref must be live with the initial reference not yet dropped). `ctx` proves RCU watches
    /// this core (a context or a read guard), which the fast path relies on: a `wait_event`
    /// condition, which runs while RCU does not watch, has none to pass.
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn get(&self, ctx: &AtomicCtx) {
        self.get_many(ctx, 1);
    }

    /// Takes `n` references (`n` < 2^31).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn get_many(&self, ctx: &AtomicCtx, n: u32) {
        rcu::assert_watching("percpu_ref_get");
        let _section = rcu::read(ctx);
        // This core's per-cpu base (`mrs tpidr_el1`, pure), read before the mode test so the
        // read dominates both paths: this_cpu_add_u64's own read folds into it, and consecutive
        // operations (a get and a put in one loop body) share one `mrs`. Being the operation's
        // first instruction, it also leaves a loop whose body starts with a get or put: LLVM
        // hoists it out of the loop (but not past anything that might not return, such as a
        // `black_box` or an opaque call earlier in the body). The slow path takes it as an
        // argument (checked in debug builds) so it is not dead code there.
        let b = machine::percpu_base();
        let w = self.word.load(Ordering::Relaxed);
        if w & ATOMIC == 0 {
            // Percpu mode: DEAD is never set without ATOMIC, so `w` is the counter's template
            // address; the counter access depends on it (pairs with R).
            injected_race_window();
            // SAFETY: in percpu mode `w` is the template address of this ref's per-cpu counter,
            // which stays allocated while the ref can be in percpu mode.
            unsafe { machine::this_cpu_add_u64(w as *mut u64, n as u64) };
        } else {
            self.get_slow(n, b);
        }
    }

    /// Drops a reference (Linux's `percpu_ref_put`); in atomic mode the put that reaches zero
    /// runs `release`. `ctx` as in [`get`](Self::get).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn put(&self, ctx: &AtomicCtx) {
        self.put_many(ctx, 1);
    }

    /// Drops `n` references (`n` < 2^31).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn put_many(&self, ctx: &AtomicCtx, n: u32) {
        rcu::assert_watching("percpu_ref_put");
        let _section = rcu::read(ctx);
        let b = machine::percpu_base(); // as in get_many
        let w = self.word.load(Ordering::Relaxed);
        if w & ATOMIC == 0 {
            // Percpu mode: as in get_many; the counter may go "negative" (wrap): only the sum
            // over all cores is meaningful.
            injected_race_window();
            // SAFETY: as in get_many.
            unsafe { machine::this_cpu_add_u64(w as *mut u64, (n as u64).wrapping_neg()) };
        } else {
            self.put_slow(n, b);
        }
    }

    /// Takes a reference unless the count is zero (Linux's `percpu_ref_tryget`). Always succeeds
    /// in percpu mode (the count cannot be zero there). `ctx` as in [`get`](Self::get).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn tryget(&self, ctx: &AtomicCtx) -> bool {
        self.tryget_many(ctx, 1)
    }

    /// Takes `n` references unless the count is zero.
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn tryget_many(&self, ctx: &AtomicCtx, n: u32) -> bool {
        rcu::assert_watching("percpu_ref_tryget");
        let _section = rcu::read(ctx);
        let w = self.word.load(Ordering::Relaxed);
        if w & ATOMIC == 0 {
            // SAFETY: as in get_many.
            unsafe { machine::this_cpu_add_u64(w as *mut u64, n as u64) };
            true
        } else {
            self.tryget_slow(n)
        }
    }

    /// Takes a reference unless the ref is dying or dead (Linux's `percpu_ref_tryget_live`).
    /// After `kill` it may still succeed for a while; once the `confirm` of
    /// [`kill_and_confirm`](Self::kill_and_confirm) has run it fails on every core. `ctx` as in
    /// [`get`](Self::get).
    ///
    /// Context: task, interrupt handler or RCU callback; never blocks; RCU must watch the core (takes `&AtomicCtx`).
    #[inline(always)]
    pub fn tryget_live(&self, ctx: &AtomicCtx) -> bool {
        rcu::assert_watching("percpu_ref_tryget_live");
        let _section = rcu::read(ctx);
        let w = self.word.load(Ordering::Relaxed);
        if w & ATOMIC == 0 {
            // SAFETY: as in get_many.
            unsafe { machine::this_cpu_add_u64(w as *mut u64, 1) };
            true
        } else if w & DEAD != 0 {
            false
        } else {
            self.tryget_slow(1)
        }
    }

    /// Whether the count is zero (false in percpu mode, where it cannot be).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn is_zero(&self) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        w & ATOMIC != 0 && self.count.load(Ordering::Acquire) == 0
    }

    /// Whether the ref is dying or dead (killed, or created with INIT_DEAD).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn is_dying(&self) -> bool {
        self.word.load(Ordering::Relaxed) & DEAD != 0
    }

    /// Whether get/put currently use the per-core counters.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn is_percpu(&self) -> bool {
        self.word.load(Ordering::Relaxed) & ATOMIC == 0
    }

    /// The count, if it is known: in atomic mode with no switch waiting for its grace period
    /// (otherwise per-core counters hold part of it). For tests and diagnostics.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn count(&self) -> Option<i64> {
        // S: Acquire pairs with the Release clear after the fold.
        if self.switching.load(Ordering::Acquire) || self.is_percpu() {
            return None;
        }
        // A switch may have started since the checks above: a biased value is not the count.
        let c = self.count.load(Ordering::Acquire);
        (c < PERCPU_COUNT_BIAS / 2).then_some(c)
    }

    // -----------------------------------------------------------------------------------------
    // Atomic-mode slow paths.
    // -----------------------------------------------------------------------------------------

    #[cold]
    #[inline(never)]
    fn get_slow(&self, n: u32, base: machine::PercpuBase) {
        debug_assert_eq!(base.get(), machine::tpidr(), "percpu_ref: per-cpu base changed within an operation");
        let mut v = self.count.load(Ordering::Relaxed);
        loop {
            if v <= 0 {
                self.report(Misuse::GetAfterRelease);
                return;
            }
            // Relaxed: taking a reference while holding one needs no ordering (refcount_inc).
            match self.count.compare_exchange_weak(v, v + n as i64, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(x) => v = x,
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn put_slow(&self, n: u32, base: machine::PercpuBase) {
        debug_assert_eq!(base.get(), machine::tpidr(), "percpu_ref: per-cpu base changed within an operation");
        let n = n as i64;
        let mut v = self.count.load(Ordering::Relaxed);
        loop {
            if v < n {
                // Refused rather than applied: the count never goes negative, so `release`
                // (which ran when it reached zero, or will when the real holders put) runs once.
                self.report(Misuse::PutBelowZero);
                return;
            }
            // Z: Release orders this holder's accesses before the decrement; Acquire (used when
            // it reaches zero) orders release() after every other holder's decrement.
            match self.count.compare_exchange_weak(v, v - n, crate::machine::ordering!(AcqRel, "Z"), Ordering::Relaxed)
            {
                Ok(_) => {
                    if v == n {
                        (self.release)(self);
                    }
                    return;
                }
                Err(x) => v = x,
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn tryget_slow(&self, n: u32) -> bool {
        let mut v = self.count.load(Ordering::Relaxed);
        loop {
            if v <= 0 {
                return false;
            }
            // T: Acquire on success: the new holder sees what was written before the count
            // became non-zero (reinit, or the creator).
            match self.count.compare_exchange_weak(
                v,
                v + n as i64,
                crate::machine::ordering!(Acquire, "T"),
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(x) => v = x,
            }
        }
    }
}

/// Fault injection only (`inject-ref-fold-no-gp`, never in normal builds): holds a get or put
/// between loading the mode word and adding to the per-core counter for a few microseconds, so
/// that a fold done without a grace period (the injected bug) lands inside that window within
/// seconds and the torture's self-test does not depend on a rare interleaving. Compiles to
/// nothing otherwise.
#[inline(always)]
fn injected_race_window() {
    if cfg!(quiescent_inject = "ref-fold-no-gp") {
        for i in 0..2000u32 {
            core::hint::black_box(i);
        }
    }
}
