//! Linux's percpu-rwsem (`kernel/locking/percpu-rwsem.c`): readers take the lock with no atomic
//! read-modify-write on a shared line and no barrier; writers pay a grace period.
//!
//! # Reader fast path
//!
//! `down_read`: if the `rcu_sync` is idle (no writer for at least a grace period), add 1 to this
//! core's count with the IRQ-safe, barrier-free local add, and return. `up_read`: the same with
//! -1. Both run inside an *implicit RCU read-side section* (QSBR: nothing between two quiescent
//! points can be a quiescent point), which is what makes them correct: a writer first leaves
//! IDLE and waits a grace period, after which no reader can still be on the fast path without
//! the writer seeing its count.
//!
//! The fast paths need RCU to watch this core, so they take the proof, `&AtomicCtx`
//! (`down_read` its `&mut Ctx`). A read guard dropped without one (`RwSemaphore::ReadGuard`'s
//! drop, which may run anywhere, even in a `wait_event` condition) checks `rcu_is_watching`
//! itself: the fast path where RCU watches, the slow path (which needs no RCU) where it does not.
//!
//! # Two counts: per-core (fast path) and `slow_count` (slow paths)
//!
//! The number of read holders is always `sum(per-core counts) + slow_count` (wrapping `u64`s,
//! which no count of live holds can wrap, forgotten guards included;
//! only the total means anything: a reader may take the lock on one path and release it on the
//! other, or on another core). The per-core counts are touched only on the fast path (and by a
//! writer's fold, below); every slow path uses the one shared atomic `slow_count`: the slow
//! `reader_trylock`'s increment and its decrement when it fails, the slow `up_read`'s decrement
//! (also a guard's release where RCU does not watch), and the waker's increment when it takes
//! the lock on a queued reader's behalf.
//!
//! While a writer is between `rss.enter()` and `rss.exit()` the per-core counts are **frozen**:
//! `enter` returns only once no core can still be on the fast path (its grace period, or an
//! earlier writer's), and the `rcu_sync` cannot return to IDLE while a writer is inside (its
//! count is non-zero; IDLE comes a grace period after the last `exit`). So the writer **folds**
//! them, once: it walks the online cores (O(N), the only per-core walk of a `down_write`), adds
//! their sum to `slow_count` and zeroes the non-zero ones. From then on `slow_count` alone is the
//! number of read holders, and the writer waits until it reads 0: one load per wake-up. A slow
//! decrement that takes `slow_count` from 1 to 0 (its `fetch_sub` returns 1) is the last exit and
//! wakes the writer; the others do not (with many readers leaving, one wake-up, not one each).
//! A decrement that reaches 0 before the fold (or with no writer waiting) wakes for nothing.
//! No wake-up is lost: after the fold `slow_count` is the number of holders plus failed slow
//! attempts not yet backed out, never "negative", so it reaches 0 only by a decrement from 1
//! (or is 0 at the writer's first check, right after its fold), and that decrement's core then
//! wakes the writer (`wake_up_all`: the store completes before the `sev`, and WFE's event latch
//! covers a `sev` that falls between the writer's check and its `wfe`). The loom models check
//! it: their `wait_event` sleeps until a `wake_up_all` (`crates/platform/src/model/wait.rs`), and
//! with the wake-up on the wrong decrement they deadlock.
//!
//! The fold's stores are ordered before any later fast-path add by the grace period between the
//! last writer's `exit` and IDLE, as the writers' critical sections are; the fast-path adds
//! before the writer's `enter` are ordered before the fold by `enter`'s grace period (or, for a
//! writer that found a writer already inside, by the `rcu_sync`'s lock and its Release/Acquire
//! of PASSED after that writer's grace period; for one that found EXIT or REPLAY, no writer
//! inside and no grace period of its own, by the chain of that lock from the earlier writer's
//! grace-period callback).
//!
//! Why a reader whose slow increment the writer misses cannot hold the lock, and why the writer
//! cannot see 0 while one does: every decrement of the total comes after its matching increment
//! (in happens-before: same core, or the waker's increment before the waiter's completion). A
//! fast-path increment is in the fold (frozen counts, all seen); a slow one that saw `block`
//! clear is in `slow_count` before the fold's add (A/D below). So any value of `slow_count` the
//! writer reads after the fold counts every holder it must wait for, and reads 0 only once each
//! of them has decremented.
//!
//! # Slow paths and barrier pairs (labels as in Linux)
//!
//! * reader: increment `slow_count`, **A** `smp_mb` (pairs with **D**), check `block`
//!   (acquire); if blocked, decrement, wake the writer if that was the last exit, and wait in
//!   the FIFO queue.
//! * reader `up_read` slow path: **B** `smp_mb` before the decrement of `slow_count` (pairs
//!   with **C**), so a writer that sees the decrement also sees the whole read-side critical
//!   section.
//! * writer: `rcu_sync` enter; take `block` with an atomic swap (writer-writer exclusion; its
//!   full barrier is **D**, pairing with **A**: either the reader sees `block` or the writer's
//!   fold, after D, comes after the reader's increment in `slow_count`'s modification order);
//!   fold the per-core counts into `slow_count`; wait until `slow_count` is zero, then **C**
//!   `smp_mb` (pairs with **B**).
//! * `up_write`: clear `block` with release semantics, admit the waiters (FIFO: readers at the
//!   head until the first writer), then `rcu_sync` exit.
//!
//! Waiting (readers for a writer, the writer for readers) counts as an RCU quiescent state:
//! otherwise a writer waiting for a grace period and a reader waiting for that writer would wait
//! for each other.
//!
//! The implicit RCU section covers only the fast path's test-and-add: once counted, a reader
//! holds the lock through its count and may pass quiescent points while holding it. Like any
//! long-running QSBR code, a reader that holds the lock for long should call
//! `rcu_quiescent_state()` now and then, or a writer's grace period waits for it.

use super::rcu_sync::RcuSync;
use super::RwSemaphore;
use crate::machine::{self, cpu_id, AtomicCtx, AtomicU32, AtomicU64, AtomicUsize, Completion, Ctx, Mutex, Ordering};
use crate::machine::{PercpuAllocError, PercpuBox};
use crate::rcu;
use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};

/// A waiter in the FIFO queue.
struct Waiter {
    reader: bool,
    /// Completed when the waker has taken the lock on the waiter's behalf.
    granted: Completion,
}

/// Linux's `percpu_rw_semaphore`. Lives in an `Arc` (see [`PercpuRwSem::new`]) so that the
/// `rcu_sync` exit callback can reach it after `up_write` returns.
pub struct PercpuRwSem {
    /// First field: the readers' one load is at offset 0.
    rss: RcuSync,
    /// One `u64` per core (8 bytes each, packed with other per-cpu data): the fast path's. 64
    /// bits, as Linux's `unsigned int __percpu *read_count` is not: a `u32` could be wrapped by
    /// 2^32 forgotten read guards (safe code), letting a writer in beside a live reader.
    read_count: PercpuBox<u64>,
    /// The slow paths' read count (wrapping), and after a writer's fold the whole count.
    slow_count: AtomicU64,
    /// Set while a writer holds or is acquiring the lock: new readers take the slow path.
    block: AtomicU32,
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
    /// Debug: core number + 1 of the writer, 0 if none.
    owner: AtomicUsize,
    /// This semaphore's own `Arc`, for the `rcu_sync` exit callback.
    me: Weak<PercpuRwSem>,
    /// Debug builds: read holders, one shared atomic (the two counts can each be "negative" for
    /// a while), to catch an unbalanced `up_read` exactly.
    #[cfg(debug_assertions)]
    holders: machine::AtomicIsize,
    /// Debug builds: walks over the per-core counts (folds and `is_read_locked`), which a test
    /// counts: one per `down_write`, however many wake-ups its wait has.
    #[cfg(debug_assertions)]
    walks: machine::AtomicUsize,
}

impl PercpuRwSem {
    /// A new semaphore; fails if the per-cpu read counts cannot be allocated.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks; allocates.
    pub fn new() -> Result<Arc<Self>, PercpuAllocError> {
        let read_count = PercpuBox::new(0u64)?;
        Ok(Arc::new_cyclic(|me| PercpuRwSem {
            rss: RcuSync::new(),
            read_count,
            slow_count: AtomicU64::new(0),
            block: AtomicU32::new(0),
            waiters: Mutex::new(VecDeque::new()),
            owner: AtomicUsize::new(0),
            me: me.clone(),
            #[cfg(debug_assertions)]
            holders: machine::AtomicIsize::new(0),
            #[cfg(debug_assertions)]
            walks: machine::AtomicUsize::new(0),
        }))
    }

    /// Whether readers are on the fast path (no writer for at least a grace period).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn readers_fast(&self) -> bool {
        self.rss.is_idle()
    }

    /// Debug builds: how many times the per-core counts have been walked (each `down_write`
    /// once, each `is_read_locked` once); `None` in release builds, which do not count.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    pub fn debug_walks(&self) -> Option<usize> {
        #[cfg(debug_assertions)]
        let walks = Some(self.walks.load(Ordering::Relaxed));
        #[cfg(not(debug_assertions))]
        let walks = None;
        walks
    }

    /// Debug builds: one more walk over the per-core counts.
    #[inline(always)]
    fn debug_walk(&self) {
        #[cfg(debug_assertions)]
        self.walks.fetch_add(1, Ordering::Relaxed);
    }

    /// The read holders, `sum(per-core) + slow_count` (wrapping). A snapshot of counts others
    /// change meanwhile, racy both ways: exact only when nothing changes them, and not during a
    /// writer's fold, whose add and zeroing it may see in part (as Linux's
    /// `percpu_is_read_locked`, meant for assertions and tests).
    fn readers(&self) -> i64 {
        self.debug_walk();
        let fast = self.read_count.sum(machine::online_cpus());
        fast.wrapping_add(self.slow_count.load(Ordering::Relaxed)) as i64
    }

    /// The writer's one walk over the per-core counts (they are frozen: see the module doc):
    /// moves their sum into `slow_count` and zeroes them, so that `slow_count` alone is the
    /// number of read holders. Only under `block`, after D.
    ///
    /// Zeroing another core's slot with a plain store is sound because nothing else writes it
    /// meanwhile: no core adds to its count while a writer is inside the rcu_sync (the fast path
    /// needs IDLE). The slot's other writers are its own core's first fast-path add after IDLE,
    /// which the grace period between the last `exit` and IDLE orders after this store (RCU
    /// covers the whole implicit read section, so the fast path's Relaxed `is_idle` load needs
    /// no acquire), and a later writer's fold, which runs after this one releases `block`.
    fn fold(&self) {
        self.debug_walk();
        let (mut sum, mut any) = (0u64, false);
        for cpu in machine::online_cpus() {
            let c = self.read_count.remote_get(cpu);
            sum = sum.wrapping_add(c);
            any |= c != 0;
        }
        if !any {
            return; // nothing to move (back-to-back writers, or every reader left where it came)
        }
        if sum != 0 {
            self.slow_count.fetch_add(sum, Ordering::Relaxed);
        }
        for cpu in machine::online_cpus() {
            if self.read_count.remote_get(cpu) != 0 {
                // SAFETY: the counts are frozen (no fast-path add until IDLE, ordered after this
                // store; no other fold until `block` is released): see `fold`'s doc.
                unsafe { self.read_count.remote_set(cpu, 0) };
            }
        }
    }

    /// A slow-path decrement of the read count: wakes the writer if it took the count to zero
    /// (the last exit, once the writer has folded; before, or with no writer, a wasted wake-up).
    fn slow_dec(&self) {
        if self.slow_count.fetch_sub(1, Ordering::Relaxed) == 1 {
            machine::wake_up_all();
        }
    }

    /// Linux's `__percpu_down_read_trylock`.
    fn reader_trylock(&self) -> bool {
        self.slow_count.fetch_add(1, Ordering::Relaxed);
        crate::machine::smp_mb!("A"); // A: the increment before reading block; pairs with D in writer_trylock

        // Acquire: if !block, the critical section starts here, after the writer's release.
        if self.block.load(Ordering::Acquire) == 0 {
            return true;
        }
        // Back out (no critical section to order); the writer waits for this count too.
        self.slow_dec();
        false
    }

    /// Linux's `__percpu_down_write_trylock`.
    fn writer_trylock(&self) -> bool {
        if self.block.load(Ordering::Relaxed) != 0 {
            return false;
        }
        // D: an exclusive swap with acquire and release, followed by a full barrier (an
        // AcqRel RMW alone does not order a later plain load of another location on ARMv8).
        let won = self.block.swap(1, Ordering::AcqRel) == 0;
        crate::machine::smp_mb!("D"); // D: block=1 before the fold and the reads of slow_count; pairs with A in reader_trylock
        won
    }

    fn trylock(&self, reader: bool) -> bool {
        if reader {
            self.reader_trylock()
        } else {
            self.writer_trylock()
        }
    }

    /// Queue, unless the lock can be taken now, and wait until a waker grants it.
    fn wait(&self, ctx: &mut Ctx, reader: bool) {
        let w = Arc::new(Waiter { reader, granted: Completion::new() });
        {
            let mut q = self.waiters.lock();
            // Serialised against the wake-up in up_write: if this trylock fails, the waker
            // will see us on the queue.
            if q.is_empty() && self.trylock(reader) {
                return;
            }
            q.push_back(w.clone());
        }
        w.granted.wait(ctx);
    }

    /// Admit waiters in FIFO order: readers until (and including) the first writer, as long as
    /// each trylock succeeds (Linux's `percpu_rwsem_wake_function` with one exclusive wake).
    fn wake(&self) {
        let mut q = self.waiters.lock();
        while let Some(w) = q.front() {
            // The lock is taken on the waiter's behalf: a reader's increment of the shared
            // `slow_count`, which the waiter's up_read decrements (on whichever path).
            if !self.trylock(w.reader) {
                break;
            }
            let w = q.pop_front().expect("front exists");
            w.granted.complete();
            if !w.reader {
                break;
            }
        }
        drop(q);
    }

    fn slow_down_read(&self, ctx: Option<&mut Ctx>) -> bool {
        if self.reader_trylock() {
            return true;
        }
        let Some(ctx) = ctx else { return false };
        self.wait(ctx, true);
        true
    }

    /// The slow-path `up_read`: correct whichever path took the lock, and whether or not RCU
    /// watches this core (it touches only the shared count).
    fn up_read_slow(&self) {
        // Whichever path took the lock: the total is what the writer waits for.
        crate::machine::smp_mb!("B"); // B: the critical section before the decrement; pairs with C in down_write
        self.slow_dec();
    }

    /// Debug builds: one more read holder.
    #[inline(always)]
    fn debug_hold(&self) {
        #[cfg(debug_assertions)]
        self.holders.fetch_add(1, Ordering::Relaxed);
    }

    /// Debug builds: one fewer read holder; an `up_read` with none is named.
    #[inline(always)]
    fn debug_release(&self) {
        #[cfg(debug_assertions)]
        if self.holders.fetch_sub(1, Ordering::Relaxed) <= 0 {
            panic!("percpu_up_read without percpu_down_read (on core {})", cpu_id());
        }
    }
}

impl RwSemaphore for PercpuRwSem {
    #[inline]
    fn down_read(&self, ctx: &mut Ctx) {
        // Fast path: an implicit RCU read-side section (QSBR) covers the test and the add; the
        // context proves RCU watches this core. TPIDR_EL1 is read unconditionally so that, in a
        // loop, the compiler reads it once.
        rcu::assert_watching("percpu_down_read");
        let base = machine::percpu_base();
        if self.rss.is_idle() {
            self.read_count.this_cpu_inc_at(base);
        } else {
            self.slow_down_read(Some(ctx));
        }
        self.debug_hold();
    }

    #[inline]
    fn down_read_trylock(&self, _ctx: &AtomicCtx) -> bool {
        rcu::assert_watching("percpu_down_read_trylock");
        let ok = if self.rss.is_idle() {
            self.read_count.this_cpu_inc();
            true
        } else {
            self.slow_down_read(None)
        };
        if ok {
            self.debug_hold();
        }
        ok
    }

    #[inline]
    unsafe fn up_read(&self, _ctx: &AtomicCtx) {
        // Fast path: as down_read's, the context proves RCU watches this core.
        rcu::assert_watching("percpu_up_read");
        let base = machine::percpu_base();
        if self.rss.is_idle() {
            self.read_count.this_cpu_dec_at(base);
        } else {
            self.up_read_slow();
        }
        self.debug_release();
    }

    #[inline]
    unsafe fn up_read_unwatched(&self) {
        // A guard dropped without a proof that RCU watches this core. Where it does (its `ctr`
        // is not 0: nothing between this check and the decrement can be a quiescent point, and
        // an interrupt cannot put the interrupted code into an extended quiescent state), the
        // fast path is as sound as with a proof. Where it does not (a `wait_event` condition),
        // a writer's grace period would not wait for this core's test-and-decrement and its
        // fold could miss the decrement: the slow path, correct everywhere.
        if rcu::rcu_is_watching() {
            let base = machine::percpu_base();
            if self.rss.is_idle() {
                self.read_count.this_cpu_dec_at(base);
                self.debug_release();
                return;
            }
        }
        self.up_read_slow();
        self.debug_release();
    }

    fn down_write(&self, ctx: &mut Ctx) {
        rcu::might_block("percpu_down_write");
        // Readers switch to the slow path (one grace period, unless a writer was recent).
        self.rss.enter(ctx);
        if !self.writer_trylock() {
            self.wait(ctx, false);
        }
        // The per-core counts are frozen now: one walk moves them into slow_count.
        self.fold();
        // Wait for the readers already inside (new ones see block and queue): one load per
        // wake-up, and the last one out wakes us. Fault injection (`inject-rwsem-no-drain`,
        // never in normal builds) skips this, for the lock torture's self-test.
        // (Relaxed, though wait_event asks for an acquiring condition: C right after orders it.)
        machine::wait_event(ctx, || {
            cfg!(quiescent_inject = "rwsem-no-drain") || self.slow_count.load(Ordering::Relaxed) == 0
        });
        crate::machine::smp_mb!("C"); // C: the zero count before the critical section; pairs with B in up_read_slow
        self.owner.store(cpu_id() + 1, Ordering::Relaxed);
    }

    fn down_write_trylock(&self) -> bool {
        // Linux has no percpu_down_write_trylock: a writer must wait for a grace period.
        false
    }

    unsafe fn up_write(&self) {
        let owner = self.owner.load(Ordering::Relaxed);
        if cfg!(debug_assertions) && owner != cpu_id() + 1 {
            panic!(
                "percpu_up_write by core {}, which does not hold it (holder: {})",
                cpu_id(),
                if owner == 0 { -1 } else { owner as i64 - 1 }
            );
        }
        self.owner.store(0, Ordering::Relaxed);
        // Release: the critical section is visible to whoever takes the lock next (readers on
        // the slow path acquire `block`; the fast path only reopens a grace period later).
        self.block.store(0, Ordering::Release);
        self.wake();
        let me = self.me.upgrade().expect("a PercpuRwSem is always in its Arc");
        self.rss.exit(&me, |s| &s.rss);
    }

    fn is_read_locked(&self) -> bool {
        self.readers() != 0
    }

    fn is_write_locked(&self) -> bool {
        self.owner.load(Ordering::Relaxed) != 0
    }

    fn assert_write_held(&self) {
        if cfg!(debug_assertions) {
            assert_eq!(
                self.owner.load(Ordering::Relaxed),
                cpu_id() + 1,
                "percpu-rwsem not write-held by core {}",
                cpu_id()
            );
        }
    }

    fn name(&self) -> &'static str {
        "percpu-rwsem"
    }
}
