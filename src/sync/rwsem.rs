//! The classic rw_semaphore (after Linux's `kernel/locking/rwsem.c`): one atomic count word that
//! every reader and writer updates with an atomic read-modify-write, the baseline percpu-rwsem
//! is measured against.
//!
//! ```text
//!  count:  [ reader count (bits 8..) | ... | HANDOFF (2) | WAITERS (1) | WRITER_LOCKED (0) ]
//! ```
//!
//! * `down_read`: `fetch_add(READER_BIAS)`; done unless a writer holds it, someone waits, or a
//!   hand-off is pending (then undo and queue: readers never overtake queued waiters).
//! * `down_write`: `cmpxchg(0 -> WRITER_LOCKED)`; else spin optimistically (bounded) while the
//!   lock is writer-owned — owners here always run, they are never descheduled — trying to steal
//!   it unless a hand-off is pending; then queue.
//! * The wait list is FIFO. Waking grants the lock to the waiters at the head: a writer alone, or
//!   every reader up to the next writer (readers queued behind a writer are admitted together).
//! * Hand-off: a head waiter that has waited longer than [`HANDOFF_NS`] sets HANDOFF, which stops
//!   spinners and fast paths from stealing the lock, so nobody starves.

use super::RwSemaphore;
use crate::arch;
use crate::percpu::cpu_id;
use crate::smp::{AtomicCtx, Ctx};
use crate::{rcu, smp};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

const WRITER_LOCKED: u64 = 1 << 0;
const WAITERS: u64 = 1 << 1;
const HANDOFF: u64 = 1 << 2;
const READER_SHIFT: u32 = 8;
const READER_BIAS: u64 = 1 << READER_SHIFT;
/// A head waiter older than this asks for a hand-off (Linux: 4 ms).
pub const HANDOFF_NS: u64 = 4_000_000;
/// Optimistic spinning: attempts before queueing.
const SPIN_LIMIT: u32 = 2000;

struct Waiter {
    reader: bool,
    granted: AtomicBool,
    since: u64,
}

/// The classic reader-writer semaphore.
pub struct RwSem {
    count: AtomicU64,
    waiters: spin::Mutex<VecDeque<Arc<Waiter>>>,
    /// Writer's core number + 1, 0 if none.
    owner: AtomicUsize,
}

impl Default for RwSem {
    fn default() -> Self {
        Self::new()
    }
}

impl RwSem {
    /// An unlocked semaphore.
    pub const fn new() -> Self {
        RwSem { count: AtomicU64::new(0), waiters: spin::Mutex::new(VecDeque::new()), owner: AtomicUsize::new(0) }
    }

    fn readers(c: u64) -> u64 {
        c >> READER_SHIFT
    }

    /// Steal attempt for a writer that is not queued: free of readers, writer and hand-off.
    fn try_write_unqueued(&self) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c & (WRITER_LOCKED | HANDOFF) == 0 && Self::readers(c) == 0 {
            match self.count.compare_exchange_weak(c, c | WRITER_LOCKED, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(v) => c = v,
            }
        }
        false
    }

    /// Queues a waiter, tries to grant the head at once (the lock may have been released while
    /// we queued), and waits (as an RCU quiescent state) until granted.
    fn wait(&self, ctx: &mut Ctx, reader: bool) {
        let w = Arc::new(Waiter { reader, granted: AtomicBool::new(false), since: arch::counter_relaxed() });
        {
            // The wait-list lock is held with interrupts masked everywhere: a hold released in
            // an interrupt handler (a try_read guard) wakes through it.
            let _irq = arch::IrqGuard::new();
            let mut q = self.waiters.lock();
            q.push_back(w.clone());
            // Every count update after this sees WAITERS; one whose release made the lock free
            // before it will not wake anyone, so check here (the atomic RMWs on `count` are
            // totally ordered: either the releaser sees WAITERS or we see its release).
            self.count.fetch_or(WAITERS, Ordering::AcqRel);
            self.grant_locked(&mut q);
        }
        let mut asked_handoff = false;
        rcu::wait_quiescent(ctx, || {
            if w.granted.load(Ordering::Acquire) {
                return false;
            }
            if !asked_handoff && arch::ticks_to_ns(arch::counter_relaxed().wrapping_sub(w.since)) > HANDOFF_NS {
                let _irq = arch::IrqGuard::new();
                let q = self.waiters.lock();
                if q.front().is_some_and(|h| Arc::ptr_eq(h, &w)) {
                    self.count.fetch_or(HANDOFF, Ordering::Relaxed);
                    asked_handoff = true;
                }
            }
            arch::wfe();
            true
        });
    }

    /// Grants the lock to the head waiters if possible (with the wait-list lock held) and wakes
    /// them. Linux's `rwsem_mark_wake`.
    fn grant_locked(&self, q: &mut VecDeque<Arc<Waiter>>) {
        let mut woke = false;
        while let Some(head) = q.front() {
            let c = self.count.load(Ordering::Relaxed);
            if c & WRITER_LOCKED != 0 {
                break;
            }
            if head.reader {
                // Every reader up to the next writer, in one step.
                let n = q.iter().take_while(|w| w.reader).count() as u64;
                let left = q.len() as u64 - n;
                let mut new = c + n * READER_BIAS;
                if left == 0 {
                    new &= !(WAITERS | HANDOFF);
                } else {
                    new &= !HANDOFF;
                }
                if self.count.compare_exchange(c, new, Ordering::Acquire, Ordering::Relaxed).is_err() {
                    continue;
                }
                for _ in 0..n {
                    let w = q.pop_front().expect("counted");
                    // Release: the grant (and the critical sections before it) are visible to
                    // the waiter that sees `granted`.
                    w.granted.store(true, Ordering::Release);
                }
                woke = true;
                break;
            } else {
                if Self::readers(c) != 0 {
                    break;
                }
                let mut new = (c | WRITER_LOCKED) & !HANDOFF;
                if q.len() == 1 {
                    new &= !WAITERS;
                }
                if self.count.compare_exchange(c, new, Ordering::Acquire, Ordering::Relaxed).is_err() {
                    continue;
                }
                let w = q.pop_front().expect("head");
                w.granted.store(true, Ordering::Release);
                woke = true;
                break;
            }
        }
        if woke {
            smp::wake_up_all(); // pairs with the waiters' wfe and Acquire re-check
        }
    }

    fn wake(&self) {
        let _irq = arch::IrqGuard::new(); // as in `wait`
        let mut q = self.waiters.lock();
        self.grant_locked(&mut q);
    }
}

impl RwSemaphore for RwSem {
    #[inline]
    fn down_read(&self, ctx: &mut Ctx) {
        let c = self.count.fetch_add(READER_BIAS, Ordering::Acquire);
        if c & (WRITER_LOCKED | WAITERS | HANDOFF) == 0 {
            return;
        }
        // Undo and queue behind the waiters (or the writer).
        let c = self.count.fetch_sub(READER_BIAS, Ordering::Release) - READER_BIAS;
        if c & WAITERS != 0 && c & WRITER_LOCKED == 0 && Self::readers(c) == 0 {
            self.wake();
        }
        self.wait(ctx, true);
    }

    fn down_read_trylock(&self, _ctx: &AtomicCtx) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c & (WRITER_LOCKED | WAITERS | HANDOFF) == 0 {
            match self.count.compare_exchange_weak(c, c + READER_BIAS, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(v) => c = v,
            }
        }
        false
    }

    #[inline]
    unsafe fn up_read(&self, _ctx: &AtomicCtx) {
        // SAFETY: the caller's contract.
        unsafe { self.up_read_unwatched() }
    }

    #[inline]
    unsafe fn up_read_unwatched(&self) {
        let c = self.count.fetch_sub(READER_BIAS, Ordering::Release);
        if cfg!(debug_assertions) && Self::readers(c) == 0 {
            panic!("rwsem up_read without down_read on core {}", cpu_id());
        }
        let c = c - READER_BIAS;
        if c & WAITERS != 0 && Self::readers(c) == 0 && c & WRITER_LOCKED == 0 {
            self.wake();
        }
    }

    fn down_write(&self, ctx: &mut Ctx) {
        rcu::assert_not_in_reader("rwsem down_write");
        let me = cpu_id() + 1;
        if self.count.compare_exchange(0, WRITER_LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.owner.store(me, Ordering::Relaxed);
            return;
        }
        // Optimistic spinning while a writer owns it (owners always run here), bounded.
        for _ in 0..SPIN_LIMIT {
            if self.try_write_unqueued() {
                self.owner.store(me, Ordering::Relaxed);
                return;
            }
            if self.owner.load(Ordering::Relaxed) == 0 && Self::readers(self.count.load(Ordering::Relaxed)) != 0 {
                break; // reader-owned: spinning could take long, queue instead
            }
            arch::cpu_relax();
        }
        self.wait(ctx, false);
        self.owner.store(me, Ordering::Relaxed);
    }

    fn down_write_trylock(&self) -> bool {
        if self.count.compare_exchange(0, WRITER_LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            self.owner.store(cpu_id() + 1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    unsafe fn up_write(&self) {
        let owner = self.owner.load(Ordering::Relaxed);
        if cfg!(debug_assertions) && owner != cpu_id() + 1 {
            panic!("rwsem up_write by core {}, which does not hold it", cpu_id());
        }
        self.owner.store(0, Ordering::Relaxed);
        let c = self.count.fetch_and(!WRITER_LOCKED, Ordering::Release);
        if c & WAITERS != 0 {
            self.wake();
        }
    }

    fn is_read_locked(&self) -> bool {
        Self::readers(self.count.load(Ordering::Relaxed)) != 0
    }

    fn is_write_locked(&self) -> bool {
        self.count.load(Ordering::Relaxed) & WRITER_LOCKED != 0
    }

    fn assert_write_held(&self) {
        if cfg!(debug_assertions) {
            assert_eq!(self.owner.load(Ordering::Relaxed), cpu_id() + 1, "rwsem not write-held by core {}", cpu_id());
        }
    }

    fn name(&self) -> &'static str {
        "rw_semaphore"
    }
}
