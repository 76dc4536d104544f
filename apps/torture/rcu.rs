//! RCU torture, after Linux's `kernel/rcu/rcutorture.c`.
//!
//! A writer replaces the current object, an [`RcuCell`] (the typed pointer users write with;
//! `replace` or, for a writer that holds no lock, `compare_and_replace`), and retires the old
//! one by one of three means, chosen at random: `Retired::free_after_sync` (`synchronize_rcu`,
//! then the drop), dropping the `Retired` (`kfree_rcu` through the box's `RcuHead`: no
//! allocation), or a polled grace period (`start_poll_synchronize_rcu` with
//! `poll_state_synchronize_rcu` or `cond_synchronize_rcu`) and then the `unsafe` `free_now`.
//! The cell holds a [`Cur`], a handle on an object of a static pool; the handle's drop, when its
//! box is freed, is the first grace period's stage, and the later stages follow as before (a
//! "removed" list advanced by later writers' grace periods, or a `call_rcu` callback that
//! re-queues itself). Every retired object's *pipe count* is 1 when it is replaced and grows by
//! one at each later grace period; at [`PIPE_LEN`] it is freed (poisoned, back on the free
//! list) and may be reused. Readers on every
//! core, in task context and in interrupt handlers (the tick, and `call_function_single` closures
//! sent to cores that may sit in blocking waits), record the pipe count they see after their
//! read-side delay: a reader can only see 0 (current) or 1 (replaced, grace period not over).
//! **Any reading past 1 means a grace period ended under a reader** (rcutorture's "Reader Pipe"
//! with `!!!`). A freed object seen by a reader is a use-after-free; a reader that sees the
//! object without its `mbtest` field (set before `rcu_assign_pointer`) breaks publication order.
//!
//! Also in the mix: nested read sections, short and long; fake writers (`synchronize_rcu`,
//! polling, empty `call_rcu`) on several cores at once; quiescent dwells (a blocking wait with
//! interrupts enabled); `rcu_barrier` from random cores, checked; and a callback flood (forward
//! progress) during which memory must stay bounded.

use super::common::{self, delay_ns, hold_ns, PerCore, Rng, Torture};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use quiescent::rcu::cell::{RcuCell, Retired};
use quiescent::smp::{self, ipi, AtomicCtx, Ctx};
use quiescent::{arch, percpu::cpu_id, rcu, MAX_CPUS};

/// rcutorture's `RCU_TORTURE_PIPE_LEN`.
pub const PIPE_LEN: usize = 10;
const NOBJ: usize = 10 * PIPE_LEN;
const LIVE: u64 = 0x5254_4f52_5455_5245; // "RTORTURE"
const POISON: u64 = 0x6b6b_6b6b_6b6b_6b6b;

/// One object (rcutorture's `struct rcu_torture`). A static pool: a "freed" object is poisoned
/// and reused, never handed back to the allocator, so a buggy reader reads poison, not memory.
struct Obj {
    pipe_count: AtomicU32,
    mbtest: AtomicU32,
    magic: AtomicU64,
}

static POOL: [Obj; NOBJ] =
    [const { Obj { pipe_count: AtomicU32::new(0), mbtest: AtomicU32::new(0), magic: AtomicU64::new(POISON) } }; NOBJ];
static FREELIST: spin::Mutex<Vec<usize>> = spin::Mutex::new(Vec::new());
/// Retired by synchronize_rcu/polling writers, waiting for their next grace periods.
static REMOVED: spin::Mutex<Vec<usize>> = spin::Mutex::new(Vec::new());
/// The current object (rcutorture's `rcu_torture_current`).
static CURRENT: RcuCell<Cur> = RcuCell::new();
/// The current object's pool index, for the statistics line (`rtc`).
static CURRENT_INDEX: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Compare-and-replace calls with a stale expected value that wrongly succeeded.
static CAS_ERRORS: AtomicU64 = AtomicU64::new(0);
static CAS_WRITES: AtomicU64 = AtomicU64::new(0);
/// The writer role (one writer at a time, as in rcutorture): try-locked, never waited for.
static WRITER: AtomicBool = AtomicBool::new(false);
/// One callback flood at a time.
static FLOODING: AtomicBool = AtomicBool::new(false);
static NEXT_FLOOD_MS: AtomicU64 = AtomicU64::new(0);

// Statistics, in rcutorture's names.
static VERSION: AtomicU64 = AtomicU64::new(0); // ver
static ALLOCS: AtomicU64 = AtomicU64::new(0); // rta
static ALLOC_FAILS: AtomicU64 = AtomicU64::new(0); // rtaf
static FREES: AtomicU64 = AtomicU64::new(0); // rtf
static MBERRORS: AtomicU64 = AtomicU64::new(0); // rtmbe
static UAF: AtomicU64 = AtomicU64::new(0); // (ours) reads of a freed object
static TIMER_READS: AtomicU64 = AtomicU64::new(0); // nt
static IPI_READS: AtomicU64 = AtomicU64::new(0);
static BARRIER_ATTEMPTS: AtomicU64 = AtomicU64::new(0);
static BARRIER_OK: AtomicU64 = AtomicU64::new(0);
static BARRIER_ERRORS: AtomicU64 = AtomicU64::new(0);
static FLOODS: AtomicU64 = AtomicU64::new(0);
static FLOOD_CBS: AtomicU64 = AtomicU64::new(0);
static FLOOD_MAX_PENDING: AtomicU64 = AtomicU64::new(0);
static FLOOD_MAX_HEAP: AtomicU64 = AtomicU64::new(0);
static FLOOD_ERRORS: AtomicU64 = AtomicU64::new(0);
static FAKE_WRITES: AtomicU64 = AtomicU64::new(0);
static DWELLS: AtomicU64 = AtomicU64::new(0);
static READS: PerCore = PerCore::new();
/// Free-Block Circulation: how many objects reached each pipe stage.
static WCOUNT: [AtomicU64; PIPE_LEN + 1] = [const { AtomicU64::new(0) }; PIPE_LEN + 1];
/// Reader Pipe / Reader Batch histograms, per core (interrupt handlers count on their core).
static PIPE: [[AtomicU64; PIPE_LEN + 1]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; PIPE_LEN + 1] }; MAX_CPUS];
static BATCH: [[AtomicU64; PIPE_LEN + 1]; MAX_CPUS] = [const { [const { AtomicU64::new(0) }; PIPE_LEN + 1] }; MAX_CPUS];

/// A flood stops if its callbacks outrun grace periods by this many (memory would grow without
/// bound): a forward-progress failure.
const FLOOD_MAX_OUTSTANDING: u64 = 100_000;
/// Heap a flood may add (the heap is 32 MiB).
const FLOOD_HEAP_LIMIT: usize = 8 << 20;
/// How long a flood's core waits, after flooding, for a grace period that has not ended yet.
const FLOOD_GP_WAIT_MS: u64 = 2000;

fn obj(i: usize) -> &'static Obj {
    &POOL[i]
}

/// What the cell holds: which pool object is current, and where it goes when the box that
/// held it is freed (a grace period after it left the cell).
struct Cur {
    idx: usize,
    then: Then,
}

enum Then {
    /// Onto the removed list, advanced by later writers' grace periods (the writer retired it
    /// synchronously: `free_after_sync` or a polled grace period).
    Removed,
    /// A `call_rcu` chain, one stage per grace period (retired by dropping it: `kfree_rcu`).
    Chain,
}

impl Drop for Cur {
    /// Runs when the cell's box is freed: one grace period has passed since the object was
    /// replaced (`kfree_rcu`'s callback or the writer after its grace period). A too-early free
    /// shows as a pipe count past 1 in a reader still holding the object.
    fn drop(&mut self) {
        if pipe_update_one(self.idx) {
            return;
        }
        match self.then {
            Then::Removed => REMOVED.lock().push(self.idx),
            Then::Chain => {
                let i = self.idx;
                rcu::call_rcu(move |_| deferred_stage(i));
            }
        }
    }
}

fn alloc_obj() -> Option<usize> {
    let i = FREELIST.lock().pop();
    match i {
        Some(i) => {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            Some(i)
        }
        None => {
            ALLOC_FAILS.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

fn free_obj(i: usize) {
    let o = obj(i);
    o.mbtest.store(0, Ordering::Relaxed);
    o.magic.store(POISON, Ordering::Relaxed);
    FREES.fetch_add(1, Ordering::Relaxed);
    FREELIST.lock().push(i);
}

/// One more grace period has passed since object `i` was retired: advance its pipe count
/// (rcutorture's `rcu_torture_pipe_update_one`). Returns whether it reached the end (freed).
fn pipe_update_one(i: usize) -> bool {
    let o = obj(i);
    let p = o.pipe_count.load(Ordering::Relaxed) as usize;
    WCOUNT[p.min(PIPE_LEN)].fetch_add(1, Ordering::Relaxed);
    o.pipe_count.store(p as u32 + 1, Ordering::Release);
    if p + 1 >= PIPE_LEN {
        free_obj(i);
        return true;
    }
    false
}

/// A grace period has passed: every object on the removed list moves one stage on.
fn pipe_update_removed() {
    let mut r = REMOVED.lock();
    r.retain(|&i| !pipe_update_one(i));
}

/// The deferred-free callback chain: one stage per grace period (rcutorture's
/// `rcu_torture_cb`).
fn deferred_stage(i: usize) {
    if !pipe_update_one(i) {
        rcu::call_rcu(move |_| deferred_stage(i));
    }
}

// ---------------------------------------------------------------------------------------------
// Readers.
// ---------------------------------------------------------------------------------------------

/// One read-side section (rcutorture's `rcu_torture_one_read`): dereference the current object,
/// check its publication, hold it for `hold` ns, then record its pipe count and the grace
/// periods that completed meanwhile. `depth` nests the section: that many outer sections, each a
/// guard the next one is taken under.
fn one_read(ctx: &AtomicCtx, depth: u32, hold: u64) {
    if depth > 0 {
        let outer = rcu::read(ctx);
        one_read(&outer, depth - 1, hold);
        drop(outer);
        return;
    }
    let g = rcu::read(ctx);
    let started = rcu::stats::completed();
    // The handle is read once, at once: the pool object outlives any grace period (a freed one
    // is poisoned, which is what the checks below look for), so a too-short grace period shows
    // there rather than as a read of the freed box.
    if let Some(idx) = CURRENT.read(&g).map(|c| c.idx) {
        let o = obj(idx);
        // rtort_mbtest: written before rcu_assign_pointer; the address dependency orders this load.
        if o.mbtest.load(Ordering::Relaxed) == 0 {
            MBERRORS.fetch_add(1, Ordering::Relaxed);
            common::fail();
        }
        delay_ns(hold);
        let pipe = (o.pipe_count.load(Ordering::Acquire) as usize).min(PIPE_LEN);
        if o.magic.load(Ordering::Relaxed) != LIVE {
            UAF.fetch_add(1, Ordering::Relaxed);
            common::fail();
        }
        if pipe > 1 {
            common::fail();
        }
        let batch = (rcu::stats::completed() - started).min(PIPE_LEN as u64) as usize;
        PIPE[cpu_id()][pipe].fetch_add(1, Ordering::Relaxed);
        BATCH[cpu_id()][batch].fetch_add(1, Ordering::Relaxed);
        READS.inc();
    }
    drop(g);
}

/// A read from an interrupt handler: short mostly, now and then long enough to span a grace
/// period if the handler were not a reader.
fn irq_read(ctx: &AtomicCtx, rng: &mut Rng) {
    let hold = if rng.pct(10) { 100_000 + rng.below(400_000) } else { rng.below(20_000) };
    one_read(ctx, 0, hold);
}

// ---------------------------------------------------------------------------------------------
// Writers.
// ---------------------------------------------------------------------------------------------

fn write(ctx: &mut Ctx, rng: &mut Rng) {
    if WRITER.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        return; // someone else is the writer now
    }
    if let Some(i) = alloc_obj() {
        let o = obj(i);
        o.pipe_count.store(0, Ordering::Relaxed);
        o.magic.store(LIVE, Ordering::Relaxed);
        o.mbtest.store(1, Ordering::Relaxed);
        // Where this object goes once replaced and a grace period has passed (its handle
        // carries it); independent of how it will be retired.
        let then = if rng.pct(50) { Then::Chain } else { Then::Removed };
        // Publication (STLR inside the cell): the fields above are visible to a reader that
        // sees the new handle.
        let old =
            if rng.pct(50) { CURRENT.replace(Cur { idx: i, then }) } else { cas_replace(ctx, Cur { idx: i, then }) };
        CURRENT_INDEX.store(i, Ordering::Relaxed);
        VERSION.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = old {
            // Replaced: stage 1 at once (readers that found it may still see it; that is fine).
            pipe_update_one(old.idx);
            retire(ctx, rng, old);
        }
    }
    WRITER.store(false, Ordering::Release);
}

/// The lock-free update: read the current handle under a guard and replace exactly it. The
/// writer role is exclusive, so the exchange must succeed; before it, an exchange that expects
/// the cell empty when it is not must fail and give the new value back.
fn cas_replace(ctx: &Ctx, new: Cur) -> Option<Retired<Cur>> {
    CAS_WRITES.fetch_add(1, Ordering::Relaxed);
    let g = rcu::read(ctx);
    let cur = CURRENT.read(&g);
    let new = match cur {
        Some(_) => match CURRENT.compare_and_replace(None, new) {
            Err(back) => back,
            Ok(old) => {
                CAS_ERRORS.fetch_add(1, Ordering::Relaxed);
                common::fail();
                return old;
            }
        },
        None => new,
    };
    match CURRENT.compare_and_replace(cur, new) {
        Ok(old) => old,
        Err(_) => {
            CAS_ERRORS.fetch_add(1, Ordering::Relaxed);
            common::fail();
            None
        }
    }
}

/// Retires the replaced handle by one of three means, at random: its drop (stage 2) comes a
/// grace period later in each.
fn retire(ctx: &mut Ctx, rng: &mut Rng, old: Retired<Cur>) {
    let how = rng.below(10);
    // The removed objects present before this grace period starts: they, and only they, may
    // move one stage on when it ends (an object dropped onto the list by this retire already
    // counts its grace period in its drop).
    let waiting = core::mem::take(&mut *REMOVED.lock());
    match how {
        0..=3 => old.free_after_sync(ctx),
        4..=7 => drop(old), // kfree_rcu: the box's head on this core's callback list
        _ => {
            let cookie = rcu::start_poll_synchronize_rcu();
            if rng.pct(50) {
                rcu::wait_quiescent(ctx, || !rcu::poll_state_synchronize_rcu(cookie));
            } else {
                rcu::cond_synchronize_rcu(ctx, cookie);
            }
            assert!(rcu::poll_state_synchronize_rcu(cookie), "rcu-torture: the polled grace period has not completed");
            // SAFETY: the grace period the cookie names began after the handle left the cell
            // and has completed (checked just above), so no reader still holds the box.
            unsafe { old.free_now() };
        }
    }
    let waited = !(4..=7).contains(&how);
    let mut r = REMOVED.lock();
    for i in waiting {
        if !waited || !pipe_update_one(i) {
            r.push(i);
        }
    }
}

/// rcutorture's fake writers: grace periods requested from several cores at once.
fn fake_write(ctx: &mut Ctx, rng: &mut Rng) {
    FAKE_WRITES.fetch_add(1, Ordering::Relaxed);
    match rng.below(3) {
        0 => rcu::synchronize_rcu(ctx),
        1 => {
            let cookie = rcu::start_poll_synchronize_rcu();
            rcu::wait_quiescent(ctx, || !rcu::poll_state_synchronize_rcu(cookie));
        }
        _ => rcu::call_rcu(|_| {}),
    }
}

/// Sits in a blocking wait (an extended quiescent state with interrupts enabled) for a while:
/// the tick's readers then run on a core that grace periods do not otherwise wait for.
fn dwell(ctx: &mut Ctx, rng: &mut Rng) {
    DWELLS.fetch_add(1, Ordering::Relaxed);
    let ns = 50_000 + rng.below(2_000_000);
    let t0 = arch::counter_relaxed();
    rcu::wait_quiescent(ctx, || arch::ticks_to_ns(arch::counter_relaxed().wrapping_sub(t0)) < ns);
}

/// Sends a reader to another core, which runs it in interrupt context (the target may be in a
/// blocking wait, a read section, or asleep in its idle loop).
fn ipi_read(ctx: &mut Ctx, rng: &mut Rng) {
    let cpus: Vec<usize> = smp::online_cpus().filter(|&c| c != cpu_id()).collect();
    if cpus.is_empty() {
        return;
    }
    let target = cpus[rng.below(cpus.len() as u64) as usize];
    let seed = rng.next();
    ipi::call_function_single(ctx, target, move |actx| {
        let mut r = Rng::new(seed);
        irq_read(actx, &mut r);
        super::percpu_ref::irq_user(actx, &mut r);
        IPI_READS.fetch_add(1, Ordering::Relaxed);
    });
}

/// rcutorture's barrier test: callbacks queued here before `rcu_barrier` have all run when it
/// returns.
fn barrier(ctx: &mut Ctx, rng: &mut Rng) {
    BARRIER_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    let n = 1 + rng.below(8) as usize;
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let r = ran.clone();
        rcu::call_rcu(move |_| {
            r.fetch_add(1, Ordering::Relaxed);
        });
    }
    rcu::rcu_barrier(ctx);
    if ran.load(Ordering::Relaxed) == n {
        BARRIER_OK.fetch_add(1, Ordering::Relaxed);
    } else {
        BARRIER_ERRORS.fetch_add(1, Ordering::Relaxed);
        common::fail();
    }
}

/// Forward progress (rcutorture's `rcu_torture_fwd_prog_cr`): one core queues callbacks as fast
/// as it can for a while, passing quiescent points between batches as a busy kthread would.
/// Grace periods must keep up: the callbacks outstanding and the heap they use stay bounded.
fn flood(ctx: &mut Ctx, rng: &mut Rng) {
    let now = common::now_ms();
    if now < NEXT_FLOOD_MS.load(Ordering::Relaxed) || FLOODING.swap(true, Ordering::Acquire) {
        return;
    }
    NEXT_FLOOD_MS.store(now + 2000 + rng.below(3000), Ordering::Relaxed);
    static INVOKED: AtomicU64 = AtomicU64::new(0);
    let heap0 = quiescent::heap::used();
    let (mut queued, mut max_pending, mut max_heap) = (0u64, 0u64, 0usize);
    let invoked0 = INVOKED.load(Ordering::Relaxed);
    let gp0 = rcu::stats::completed();
    let end = now + 20 + rng.below(30);
    let mut bounded = true;
    while common::now_ms() < end && !common::stopping() {
        for _ in 0..64 {
            rcu::call_rcu(|_| {
                INVOKED.fetch_add(1, Ordering::Relaxed);
            });
        }
        queued += 64;
        rcu::rcu_quiescent_state(ctx);
        let pending = queued - (INVOKED.load(Ordering::Relaxed) - invoked0);
        max_pending = max_pending.max(pending);
        max_heap = max_heap.max(quiescent::heap::used().saturating_sub(heap0));
        if pending > FLOOD_MAX_OUTSTANDING || max_heap > FLOOD_HEAP_LIMIT {
            bounded = false;
            break;
        }
    }
    // At least one grace period must end during the flood. The flood lasts only 20-50 ms, and
    // on a loaded host a vCPU that holds the grace period open can be descheduled for longer
    // than that (a 600 s debug soak on rpi4 under a load average of 10 saw 0 grace periods in
    // one flood), so wait up to FLOOD_GP_WAIT_MS more, queueing nothing, before calling it a
    // failure: a grace period that still does not end is a real forward-progress problem.
    let wait_end = common::now_ms() + FLOOD_GP_WAIT_MS * common::slack();
    while bounded && rcu::stats::completed() == gp0 && common::now_ms() < wait_end && !common::stopping() {
        rcu::rcu_quiescent_state(ctx);
        core::hint::spin_loop();
    }
    let gps = rcu::stats::completed() - gp0;
    if !bounded || gps == 0 {
        defmt::println!(
            "rcu-torture: !!! callback flood: {} queued, {} outstanding at most, {} KiB of heap, {} grace periods: grace periods did not keep up",
            queued, max_pending, max_heap / 1024, gps
        );
        FLOOD_ERRORS.fetch_add(1, Ordering::Relaxed);
        common::fail();
    }
    FLOODS.fetch_add(1, Ordering::Relaxed);
    FLOOD_CBS.fetch_add(queued, Ordering::Relaxed);
    FLOOD_MAX_PENDING.fetch_max(max_pending, Ordering::Relaxed);
    FLOOD_MAX_HEAP.fetch_max(max_heap as u64, Ordering::Relaxed);
    FLOODING.store(false, Ordering::Release);
}

// ---------------------------------------------------------------------------------------------

pub struct RcuTorture;

pub static RCU_TORTURE: RcuTorture = RcuTorture;

fn sum(h: &[[AtomicU64; PIPE_LEN + 1]; MAX_CPUS]) -> [u64; PIPE_LEN + 1] {
    let mut s = [0u64; PIPE_LEN + 1];
    for cpu in h.iter() {
        for (i, v) in cpu.iter().enumerate() {
            s[i] += v.load(Ordering::Relaxed);
        }
    }
    s
}

fn row(v: &[u64]) -> String {
    let mut s = String::new();
    for x in v {
        s.push_str(&alloc::format!(" {}", x));
    }
    s
}

impl Torture for RcuTorture {
    fn name(&self) -> &'static str {
        "rcu-torture"
    }

    fn start(&self) {
        FREELIST.lock().extend(0..NOBJ);
        let i = alloc_obj().expect("a free object at the start");
        let o = obj(i);
        o.magic.store(LIVE, Ordering::Relaxed);
        o.mbtest.store(1, Ordering::Relaxed);
        assert!(CURRENT.replace(Cur { idx: i, then: Then::Removed }).is_none());
        CURRENT_INDEX.store(i, Ordering::Relaxed);
    }

    fn weight(&self) -> u64 {
        100
    }

    fn op(&self, ctx: &mut Ctx, rng: &mut Rng, pick: u64) {
        match pick {
            0..=49 => {
                let depth = rng.below(3) as u32;
                let hold = hold_ns(rng, 5_000, 400_000);
                one_read(ctx, depth, hold);
            }
            50..=59 => {
                // Several short sections back to back, no quiescent point between them.
                for _ in 0..1 + rng.below(16) {
                    one_read(ctx, 0, 0);
                }
            }
            60..=71 => write(ctx, rng),
            72..=79 => fake_write(ctx, rng),
            80..=87 => ipi_read(ctx, rng),
            88..=95 => dwell(ctx, rng),
            96..=97 => barrier(ctx, rng),
            _ => flood(ctx, rng),
        }
    }

    fn irq(&self, ctx: &AtomicCtx, rng: &mut Rng) {
        if rng.pct(50) {
            irq_read(ctx, rng);
            TIMER_READS.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finish(&self, ctx: &mut Ctx) {
        // Retire the last object and let every removed one reach the end of the pipe.
        if let Some(old) = CURRENT.take() {
            pipe_update_one(old.idx);
            old.free_after_sync(ctx); // stage 2, onto the removed list
        }
        CURRENT_INDEX.store(usize::MAX, Ordering::Relaxed);
        for _ in 0..PIPE_LEN {
            rcu::synchronize_rcu(ctx);
            pipe_update_removed();
        }
        // The deferred-free chains (the kfree_rcu'd box, then deferred_stage re-queueing itself,
        // one stage per grace period) run on the cores that queued them, at their own pace: the
        // grace periods above need not have moved them on. Each rcu_barrier runs every callback
        // queued before it, kfree_rcu's included, so it moves every chain on by at least one
        // stage; PIPE_LEN of them finish any chain. An object still missing after that was
        // lost, not late.
        for _ in 0..PIPE_LEN {
            if FREELIST.lock().len() == NOBJ {
                break;
            }
            rcu::rcu_barrier(ctx);
        }
        let free = FREELIST.lock().len();
        if free != NOBJ {
            defmt::println!("rcu-torture: !!! {} of {} objects never came back to the free list", NOBJ - free, NOBJ);
            common::fail();
        }
    }

    fn stats(&self) -> bool {
        let pipe = sum(&PIPE);
        let batch = sum(&BATCH);
        let too_short: u64 = pipe[2..].iter().sum();
        let (mbe, uaf, berr, ferr, caserr) = (
            MBERRORS.load(Ordering::Relaxed),
            UAF.load(Ordering::Relaxed),
            BARRIER_ERRORS.load(Ordering::Relaxed),
            FLOOD_ERRORS.load(Ordering::Relaxed),
            CAS_ERRORS.load(Ordering::Relaxed),
        );
        let bad = too_short != 0 || mbe != 0 || uaf != 0 || berr != 0 || ferr != 0 || caserr != 0;
        defmt::println!(
            "rcu-torture: rtc: {} ver: {} tfle: {} rta: {} rtaf: {} rtf: {} rtmbe: {} rtuaf: {} nt: {} ni: {} barrier: {}/{}:{} cbflood: {} ({} callbacks, max pending {}, max heap {} KiB) fakewrites: {} dwells: {} cmpxchg: {}:{} gps: {}",
            CURRENT_INDEX.load(Ordering::Relaxed) as isize, VERSION.load(Ordering::Relaxed),
            common::flag(FREELIST.lock().is_empty()), ALLOCS.load(Ordering::Relaxed),
            ALLOC_FAILS.load(Ordering::Relaxed), FREES.load(Ordering::Relaxed), mbe, uaf,
            TIMER_READS.load(Ordering::Relaxed), IPI_READS.load(Ordering::Relaxed),
            BARRIER_OK.load(Ordering::Relaxed), BARRIER_ATTEMPTS.load(Ordering::Relaxed), berr,
            FLOODS.load(Ordering::Relaxed), FLOOD_CBS.load(Ordering::Relaxed),
            FLOOD_MAX_PENDING.load(Ordering::Relaxed), FLOOD_MAX_HEAP.load(Ordering::Relaxed) / 1024,
            FAKE_WRITES.load(Ordering::Relaxed), DWELLS.load(Ordering::Relaxed),
            CAS_WRITES.load(Ordering::Relaxed), caserr, rcu::stats::completed()
        );
        let bang = if bad { "!!! " } else { "" };
        defmt::println!("rcu-torture: {=str}Reader Pipe: {=str}", bang, row(&pipe).as_str());
        defmt::println!("rcu-torture: Reader Batch: {=str}", row(&batch).as_str());
        let wc: Vec<u64> = WCOUNT.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        defmt::println!("rcu-torture: Free-Block Circulation: {=str}", row(&wc).as_str());
        let (mx, mn) = READS.max_min();
        defmt::println!("rcu-torture: Reads: Total: {} Max/Min: {}/{} (per core)", READS.total(), mx, mn);
        if too_short != 0 {
            defmt::println!("rcu-torture: !!! too-short grace period: {} reads saw a pipe count past 1", too_short);
        }
        if uaf != 0 {
            defmt::println!("rcu-torture: !!! use-after-free: {} reads of a freed object", uaf);
        }
        if mbe != 0 {
            defmt::println!("rcu-torture: !!! rtmbe: {} reads missed a field written before rcu_assign_pointer", mbe);
        }
        if berr != 0 {
            defmt::println!("rcu-torture: !!! rcu_barrier returned before {} of its callbacks", berr);
        }
        if caserr != 0 {
            defmt::println!(
                "rcu-torture: !!! compare_and_replace failed {} times against the handle the sole writer read",
                caserr
            );
        }
        !bad
    }

    fn params(&self) -> String {
        alloc::format!(
            "nreaders={} nfakewriters={} irqreader=1 pipe_len={} nobj={}",
            quiescent::smp::num_online(),
            quiescent::smp::num_online(),
            PIPE_LEN,
            NOBJ
        )
    }
}
