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
//! # Slow paths and barrier pairs (labels as in Linux)
//!
//! * reader: increment, **A** `smp_mb` (pairs with **D**), check `block` (acquire); if blocked,
//!   decrement, wake the writer, and wait in the FIFO queue.
//! * reader `up_read` slow path: **B** `smp_mb` before the decrement (pairs with **C**), so a
//!   writer that sees the decrement also sees the whole read-side critical section.
//! * writer: `rcu_sync` enter; take `block` with an atomic swap (writer-writer exclusion; its
//!   full-barrier semantics are **D**, pairing with **A**: either the reader sees `block` or the
//!   writer sees the reader's increment); wait until the per-core counts sum to zero, then **C**
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
use crate::machine::{self, cpu_id, smp_mb, AtomicU32, AtomicUsize, Completion, Mutex, Ordering};
use crate::machine::{PerCpuAllocError, PerCpuBox};
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
    /// One `u32` per core (4 bytes each, packed with other per-cpu data).
    read_count: PerCpuBox<u32>,
    /// Set while a writer holds or is acquiring the lock: new readers take the slow path.
    block: AtomicU32,
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
    /// Debug: core number + 1 of the writer, 0 if none.
    owner: AtomicUsize,
    /// This semaphore's own `Arc`, for the `rcu_sync` exit callback.
    me: Weak<PercpuRwSem>,
    /// Debug builds: read holders, one shared atomic (the per-core counts can sum to a negative
    /// value for a moment while a waker counts a reader on its own core), to catch an unbalanced
    /// `up_read` exactly.
    #[cfg(debug_assertions)]
    holders: machine::AtomicIsize,
}

impl AsRef<RcuSync> for PercpuRwSem {
    fn as_ref(&self) -> &RcuSync {
        &self.rss
    }
}

impl PercpuRwSem {
    /// A new semaphore; fails if the per-cpu read counts cannot be allocated.
    pub fn new() -> Result<Arc<Self>, PerCpuAllocError> {
        let read_count = PerCpuBox::new(0u32)?;
        Ok(Arc::new_cyclic(|me| PercpuRwSem {
            rss: RcuSync::new(),
            read_count,
            block: AtomicU32::new(0),
            waiters: Mutex::new(VecDeque::new()),
            owner: AtomicUsize::new(0),
            me: me.clone(),
            #[cfg(debug_assertions)]
            holders: machine::AtomicIsize::new(0),
        }))
    }

    /// Whether readers are on the fast path (no writer for at least a grace period).
    pub fn readers_fast(&self) -> bool {
        self.rss.is_idle()
    }

    /// Sum of the per-core read counts (wrapping: per-core counts may go "negative").
    fn readers(&self) -> i32 {
        self.read_count.sum(machine::online_cpus()) as i32
    }

    /// Linux's `__percpu_down_read_trylock`.
    fn reader_trylock(&self) -> bool {
        self.read_count.this_cpu_add(1);
        smp_mb(); // A: the increment before reading block; pairs with D in writer_trylock

        // Acquire: if !block, the critical section starts here, after the writer's release.
        if self.block.load(Ordering::Acquire) == 0 {
            return true;
        }
        self.read_count.this_cpu_add(u32::MAX); // -1

        // Prod the writer to re-evaluate the reader count (in wait_event).
        machine::wake_up_all();
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
        smp_mb(); // D: block=1 before reading the read counts; pairs with A in reader_trylock
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
    fn wait(&self, reader: bool) {
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
        w.granted.wait();
    }

    /// Admit waiters in FIFO order: readers until (and including) the first writer, as long as
    /// each trylock succeeds (Linux's `percpu_rwsem_wake_function` with one exclusive wake).
    fn wake(&self) {
        let mut q = self.waiters.lock();
        while let Some(w) = q.front() {
            // The lock is taken on the waiter's behalf (its count is this core's: the sum is
            // what matters, and the waiter's up_read subtracts on its own core).
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

    fn slow_down_read(&self, try_only: bool) -> bool {
        if self.reader_trylock() {
            return true;
        }
        if try_only {
            return false;
        }
        self.wait(true);
        true
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
    fn down_read(&self) {
        // Fast path: an implicit RCU read-side section (QSBR) covers the test and the add.
        // TPIDR_EL1 is read unconditionally so that, in a loop, the compiler reads it once.
        rcu::assert_watching("percpu_down_read");
        let base = machine::percpu_base();
        if self.rss.is_idle() {
            self.read_count.this_cpu_inc_at(base);
        } else {
            self.slow_down_read(false);
        }
        self.debug_hold();
    }

    #[inline]
    fn down_read_trylock(&self) -> bool {
        rcu::assert_watching("percpu_down_read_trylock");
        let ok = if self.rss.is_idle() {
            self.read_count.this_cpu_inc();
            true
        } else {
            self.slow_down_read(true)
        };
        if ok {
            self.debug_hold();
        }
        ok
    }

    #[inline]
    fn up_read(&self) {
        rcu::assert_watching("percpu_up_read");
        let base = machine::percpu_base();
        if self.rss.is_idle() {
            self.read_count.this_cpu_dec_at(base);
        } else {
            smp_mb(); // B: the critical section before the decrement; pairs with C in down_write
            self.read_count.this_cpu_add(u32::MAX);
            // A reader only ever wakes the (single) writer waiting for the count.
            machine::wake_up_all();
        }
        self.debug_release();
    }

    fn down_write(&self) {
        rcu::might_block("percpu_down_write");
        // Readers switch to the slow path (one grace period, unless a writer was recent).
        self.rss.enter();
        if !self.writer_trylock() {
            self.wait(false);
        }
        // Wait for the readers already inside (new ones see block and queue). Fault injection
        // (`inject-rwsem-no-drain`, never in normal builds) skips this, for the lock torture's
        // self-test.
        machine::wait_event(|| cfg!(feature = "inject-rwsem-no-drain") || self.readers() == 0);
        smp_mb(); // C: the zero sum before the critical section; pairs with B in up_read
        self.owner.store(cpu_id() + 1, Ordering::Relaxed);
    }

    fn down_write_trylock(&self) -> bool {
        // Linux has no percpu_down_write_trylock: a writer must wait for a grace period.
        false
    }

    fn up_write(&self) {
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
        self.rss.exit(&me);
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
