//! RCU: grace-period semantics, callbacks, rcu_barrier, lists under concurrent readers, and the
//! stall detector.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use quiescent::arch;
use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::tick as timer;
use quiescent::smp::{ipi, Ctx};
use quiescent::test::{others, spin_on, wait_flag};
use quiescent::{smp, test};

fn no_stall_reported_so_far(_ctx: &mut Ctx) {
    assert_eq!(rcu::stats::stalls().0, 0, "the stall detector fired without a stall");
}

fn grace_period_on_this_core_alone_completes(ctx: &mut Ctx) {
    // With every other core idle, each call costs exactly one grace period: a caller never
    // waits for more than it needs.
    let before = rcu::stats::completed();
    for _ in 0..10 {
        rcu::synchronize_rcu(ctx);
    }
    assert_eq!(rcu::stats::completed() - before, 10, "ten synchronize_rcu calls alone");
}

/// Sequence numbers that order events across cores.
static SEQ: AtomicU64 = AtomicU64::new(0);
fn stamp() -> u64 {
    SEQ.fetch_add(1, Ordering::AcqRel)
}

fn grace_period_waits_for_a_preexisting_reader(ctx: &mut Ctx) {
    // Past 8 cores vCPUs outnumber the host's cores and a busy one may wait seconds for a host
    // core: the stall timeout stretches by 3 s per 8 cores, as the torture's does (the stall
    // case at the end sets its own and then 3 s again).
    let n = smp::num_online();
    if n > 8 {
        rcu::stats::set_stall_timeout_ms(3000 * (n / 8) as u64);
    }
    let o = others();
    if o.len() < 2 {
        return;
    }
    let (reader, syncer) = (o[0], o[1]);
    // The reader holds the old object inside a read-side section; an updater publishes a new one
    // and calls synchronize_rcu (on another core) before freeing the old one.
    let old = Box::into_raw(Box::new(0xfeed_u64));
    let ptr = Arc::new(AtomicPtr::new(old));
    let (inside, release, reader_out, sync_done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let (p2, i2, r2, o2) = (ptr.clone(), inside.clone(), release.clone(), reader_out.clone());
    smp::queue_work(reader, move |ctx| {
        let g = rcu::read(ctx);
        let p = rcu::rcu_dereference(&p2, &g);
        i2.store(true, Ordering::Release);
        while !r2.load(Ordering::Acquire) {
            // SAFETY: `p` was read inside this read-side section, which is still open.
            assert_eq!(unsafe { *p }, 0xfeed, "the object was freed under a reader");
            arch::cpu_relax();
        }
        o2.store(stamp(), Ordering::Release);
        drop(g);
    });
    wait_flag(ctx, &inside, "the reader entering its section");
    let new = Box::into_raw(Box::new(0xbeef_u64));
    rcu::rcu_assign_pointer(&ptr, new);
    let s2 = sync_done.clone();
    let old_addr = old as usize;
    smp::queue_work(syncer, move |ctx| {
        rcu::synchronize_rcu(ctx);
        s2.store(stamp(), Ordering::Release);
        // SAFETY: a grace period has passed since `old` was unpublished: no reader holds it.
        drop(unsafe { Box::from_raw(old_addr as *mut u64) });
    });
    // While the reader stays inside, the grace period cannot end (checked for 100 ms of counter
    // time; the ordering check below is what proves it).
    let t0 = arch::counter();
    while arch::ticks_to_ns(arch::counter() - t0) < 100_000_000 {
        assert_eq!(
            sync_done.load(Ordering::Acquire),
            0,
            "synchronize_rcu returned while a pre-existing reader was inside"
        );
        arch::cpu_relax();
    }
    release.store(true, Ordering::Release);
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "synchronize_rcu never returned");
        sync_done.load(Ordering::Acquire) == 0
    });
    assert!(
        reader_out.load(Ordering::Acquire) < sync_done.load(Ordering::Acquire),
        "the reader left after synchronize_rcu returned"
    );
    rcu::synchronize_rcu(ctx);
    // SAFETY: unpublished below, after a grace period; nobody else frees it.
    drop(unsafe { Box::from_raw(ptr.swap(core::ptr::null_mut(), Ordering::AcqRel)) });
}

fn grace_period_does_not_wait_for_later_readers(ctx: &mut Ctx) {
    let o = others();
    if o.len() < 2 {
        return;
    }
    let (c, holder) = (o[0], o[1]);
    // A busy core holds the grace period open until the later reader is inside.
    let unhold = spin_on(ctx, holder, false, "the holder starting");
    let cookie = rcu::start_poll_synchronize_rcu();
    // Core c passes a quiescent point after the grace period started (a work item ends)...
    smp::call_on(ctx, c, |_| ());
    // ...then starts a reader that stays inside until released.
    let release = spin_on(ctx, c, true, "the later reader entering its section");
    assert!(!rcu::poll_state_synchronize_rcu(cookie), "the holder did not hold the grace period");
    unhold.store(true, Ordering::Release);
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(
            arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000,
            "the grace period waited for a reader that began after it"
        );
        !rcu::poll_state_synchronize_rcu(cookie)
    });
    // The grace period ended with the reader still inside (it leaves only when released).
    release.store(true, Ordering::Release);
    smp::call_on(ctx, c, |_| ());
}

/// Linux's polling cookies: `get_state_synchronize_rcu`'s cookie completes only once a grace
/// period covers the readers running when it was taken (pushes and other cores' requests
/// cannot end it earlier), `cond_synchronize_rcu` waits for exactly that, and
/// `get_completed_synchronize_rcu` always reads as completed.
fn polling_cookies_complete_only_after_their_readers(ctx: &mut Ctx) {
    let done = rcu::get_completed_synchronize_rcu();
    assert!(rcu::poll_state_synchronize_rcu(done), "the always-completed cookie");
    rcu::cond_synchronize_rcu(ctx, done);
    let o = others();
    if o.len() < 2 {
        return;
    }
    let (reader, waiter) = (o[0], o[1]);
    let release = spin_on(ctx, reader, true, "the reader entering its section");
    let cookie = rcu::get_state_synchronize_rcu();
    let waited = Arc::new(AtomicBool::new(false));
    let w2 = waited.clone();
    smp::queue_work(waiter, move |ctx| {
        rcu::cond_synchronize_rcu(ctx, cookie);
        assert!(rcu::poll_state_synchronize_rcu(cookie), "cond_synchronize_rcu returned before its grace period");
        w2.store(true, Ordering::Release);
    });
    for _ in 0..200 {
        rcu::stats::gp_try_complete();
        rcu::start_poll_synchronize_rcu();
        assert!(!rcu::poll_state_synchronize_rcu(cookie), "the cookie completed with its reader still inside");
        assert!(!waited.load(Ordering::Acquire), "cond_synchronize_rcu returned with the reader still inside");
        rcu::rcu_quiescent_state(ctx);
    }
    release.store(true, Ordering::Release);
    wait_flag(ctx, &waited, "cond_synchronize_rcu after the reader left");
    assert!(rcu::poll_state_synchronize_rcu(cookie));
}

/// Cookies taken across many grace periods: each later than the last, each completed once a
/// grace period after it has, and then `cond_synchronize_rcu` on any of them returns at once.
fn polling_cookies_across_many_grace_periods(ctx: &mut Ctx) {
    let mut cookies = Vec::new();
    for _ in 0..32 {
        let c = rcu::get_state_synchronize_rcu();
        assert!(cookies.last().is_none_or(|&l| c > l), "cookie {} not after the last one", c);
        cookies.push(c);
        rcu::synchronize_rcu(ctx);
        assert!(rcu::poll_state_synchronize_rcu(c), "cookie {} not completed by the grace period after it", c);
    }
    for &c in &cookies {
        assert!(rcu::poll_state_synchronize_rcu(c), "old cookie {} reads as not completed", c);
        rcu::cond_synchronize_rcu(ctx, c);
    }
    let newest = rcu::get_state_synchronize_rcu();
    assert!(newest > *cookies.last().unwrap_or(&0));
    rcu::cond_synchronize_rcu(ctx, newest);
    assert!(rcu::poll_state_synchronize_rcu(newest));
}

/// An object in an `RcuCell`: both halves always equal while live; poisoned when dropped, so a
/// reader that reaches a freed object (or one freed and reused) sees it.
struct Versioned {
    a: u64,
    b: u64,
    magic: u64,
    drops: Arc<AtomicUsize>,
}

impl Versioned {
    fn new(v: u64, drops: &Arc<AtomicUsize>) -> Self {
        Versioned { a: v, b: v, magic: LIVE, drops: drops.clone() }
    }
}

impl Drop for Versioned {
    fn drop(&mut self) {
        // SAFETY: fields of the object being dropped; volatile so the poison is not elided.
        unsafe { core::ptr::write_volatile(&mut self.magic, 0xdead) };
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// `RcuCell`: readers on every other core read the object (through the safe API only) while
/// core 0 replaces it, retiring each old one by dropping it (freed after a grace period), by
/// `free_after_sync`, or by a lock-free compare-and-replace. No reader may see a freed or torn
/// object, every retired object is freed exactly once, and a compare-and-replace against a
/// stale object fails and hands the new value back.
fn rcu_cell_readers_never_see_a_retired_object_freed(ctx: &mut Ctx) {
    use quiescent::rcu::cell::RcuCell;
    let drops = Arc::new(AtomicUsize::new(0));
    let cell = Arc::new(RcuCell::with(Versioned::new(0, &drops)));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let others = others();
    let running = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    for &c in &others {
        let (cell, stop, reads, running) = (cell.clone(), stop.clone(), reads.clone(), running.clone());
        let started = started.clone();
        smp::queue_work(c, move |ctx| {
            started.fetch_add(1, Ordering::Release);
            let mut last = 0;
            while !stop.load(Ordering::Acquire) {
                {
                    let g = rcu::read(ctx);
                    let o = cell.read(&g).expect("the cell is never empty here");
                    assert_eq!(o.magic, LIVE, "a reader reached a freed object");
                    assert_eq!(o.a, o.b, "a torn object");
                    assert!(o.a >= last, "versions went backwards: {} after {}", o.a, last);
                    last = o.a;
                }
                reads.fetch_add(1, Ordering::Relaxed);
                rcu::rcu_quiescent_state(ctx);
            }
            running.fetch_add(1, Ordering::Release);
        });
    }
    test::wait_until(ctx, 5000, "the readers starting", || started.load(Ordering::Acquire) == others.len());
    const N: u64 = 300;
    for v in 1..=N {
        let old = cell.replace(Versioned::new(v, &drops)).expect("the cell held an object");
        assert_eq!(old.a, v - 1, "replace returned another object");
        if v % 16 == 0 {
            old.free_after_sync(ctx);
        } else {
            drop(old);
        }
        if v % 64 == 0 {
            rcu::rcu_quiescent_state(ctx);
        }
    }
    // Lock-free update: against the current object it succeeds, against a stale one it fails
    // and hands the new value back (which is dropped here: one more drop).
    {
        let g = rcu::read(ctx);
        let cur = cell.read(&g);
        let old = cell.compare_and_replace(cur, Versioned::new(N + 1, &drops));
        let old = old.ok().flatten().expect("compare_and_replace against the current object");
        assert_eq!(old.a, N);
        drop(old);
        // `cur` is stale now, and still readable: the guard keeps its object from being freed.
        assert_eq!(cur.map(|o| o.magic), Some(LIVE));
        match cell.compare_and_replace(cur, Versioned::new(N + 2, &drops)) {
            Err(back) => assert_eq!(back.a, N + 2, "the new value handed back"),
            Ok(_) => panic!("compare_and_replace succeeded against a stale object"),
        }
        assert_eq!(cell.read(&g).map(|o| o.a), Some(N + 1));
    }
    stop.store(true, Ordering::Release);
    test::wait_until(ctx, 10_000, "the readers stopping", || running.load(Ordering::Acquire) == others.len());
    rcu::rcu_barrier(ctx);
    // N replaced, one by compare_and_replace, one handed back: each freed exactly once.
    assert_eq!(drops.load(Ordering::Relaxed), N as usize + 2, "every retired object freed exactly once");
    let last = cell.take().expect("the cell held the last object");
    assert_eq!(last.a, N + 1);
    last.free_after_sync(ctx);
    assert!(cell.take().is_none());
    defmt::println!(
        "rcu cell: {} reads on {} cores during {} replacements",
        reads.load(Ordering::Relaxed),
        others.len(),
        N + 1
    );
}

fn grace_period_completes_while_others_sleep_and_wakes_none(ctx: &mut Ctx) {
    // Stop the ticks on the other cores so only a real wake-up source (SEV, IPI) could wake them.
    let o = others();
    for &c in &o {
        smp::call_on(ctx, c, |_| timer::stop_tick());
    }
    for &c in &o {
        let t0 = arch::counter();
        while !smp::is_sleeping(c) {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 2_000_000_000, "core {} never went to sleep", c);
            arch::cpu_relax();
        }
    }
    let wakes: Vec<u64> = o.iter().map(|&c| smp::wakeups(c)).collect();
    let before = rcu::stats::completed();
    let t0 = arch::counter();
    for _ in 0..100 {
        rcu::synchronize_rcu(ctx);
    }
    let ns = arch::ticks_to_ns(arch::counter() - t0) / 100;
    let after: Vec<u64> = o.iter().map(|&c| smp::wakeups(c)).collect();
    for &c in &o {
        smp::call_on(ctx, c, |_| timer::start_tick(smp::DEFAULT_TICK_HZ));
    }
    assert!(rcu::stats::completed() >= before + 100);
    assert_eq!(after, wakes, "synchronize_rcu woke a sleeping core");
    defmt::info!("synchronize_rcu with every other core asleep: {} ns each (counter time)", ns);
}

fn concurrent_callers_share_grace_periods(ctx: &mut Ctx) {
    const CALLS: u64 = 40;
    let before = rcu::stats::completed();
    test::on_all_cores(ctx, |_, ctx| {
        for _ in 0..CALLS {
            let s = rcu::stats::started();
            rcu::synchronize_rcu(ctx);
            // It waited for a grace period that started after the call.
            assert!(rcu::stats::completed() > s, "synchronize_rcu returned before a new grace period");
        }
    });
    let gps = rcu::stats::completed() - before;
    let calls = CALLS * smp::num_online() as u64;
    defmt::info!("{} concurrent synchronize_rcu calls took {} grace periods", calls, gps);
    assert!(gps >= CALLS, "fewer grace periods than one caller's sequential calls");
    assert!(gps <= calls, "more grace periods than calls");
}

fn callers_during_one_grace_period_share_the_next(ctx: &mut Ctx) {
    // A busy core holds grace period g open; every other core asks for a grace period while
    // it is in progress. All of them need the same one (g + 1), and it serves them all.
    let o = others();
    if o.len() < 2 {
        return;
    }
    let unhold = spin_on(ctx, o[0], false, "the holder starting");
    let g = rcu::start_poll_synchronize_rcu();
    assert!(!rcu::poll_state_synchronize_rcu(g), "grace period {} ended with the holder busy", g);
    let mut cookies: Vec<u64> =
        o[1..].iter().map(|&c| smp::call_on(ctx, c, |_| rcu::start_poll_synchronize_rcu())).collect();
    cookies.push(rcu::start_poll_synchronize_rcu());
    // Whether g had started already or was only requested, every later caller needs the same
    // single grace period after it.
    let shared = cookies[0];
    assert!(shared >= g, "a caller asked for an older grace period");
    for &k in &cookies {
        assert_eq!(k, shared, "callers during one grace period asked for different ones: {:?}", cookies.as_slice());
    }
    unhold.store(true, Ordering::Release);
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "the shared grace period never ended");
        !rcu::poll_state_synchronize_rcu(shared)
    });
}

/// Per core, each callback run: (its index, the grace period it needs, grace periods completed when it ran).
type CallbackLog = Arc<Vec<spin::Mutex<Vec<(usize, u64, u64)>>>>;

fn call_rcu_runs_after_a_grace_period_once_in_order(ctx: &mut Ctx) {
    const N: usize = 200;
    let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
    let l2 = log.clone();
    test::on_all_cores(ctx, move |cpu, _| {
        for i in 0..N {
            let snap = rcu::stats::started() + 1;
            let l = l2.clone();
            rcu::call_rcu(move |_| l[cpu].lock().push((i, snap, rcu::stats::completed())));
        }
        // A callback that allocates and queues another one, twice.
        let l = l2.clone();
        rcu::call_rcu(move |_| {
            let l3 = l.clone();
            rcu::call_rcu(move |_| {
                let l4 = l3.clone();
                rcu::call_rcu(move |_| l4[cpu].lock().push((usize::MAX, 0, 0)));
            });
        });
    });
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
    for cpu in smp::online_cpus() {
        let l = log[cpu].lock();
        assert_eq!(l.len(), N + 1, "core {}: {} callbacks ran", cpu, l.len());
        for (k, &(i, snap, done)) in l.iter().take(N).enumerate() {
            assert_eq!(i, k, "core {}: callbacks out of order", cpu);
            assert!(done >= snap, "core {}: callback {} ran before its grace period ({} < {})", cpu, i, done, snap);
        }
        assert_eq!(l[N].0, usize::MAX, "core {}: the chained callbacks did not all run", cpu);
    }
}

fn rcu_barrier_waits_for_every_queued_callback(ctx: &mut Ctx) {
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    test::on_all_cores(ctx, move |_, _| {
        for _ in 0..50 {
            let r = r2.clone();
            rcu::call_rcu(move |_| {
                r.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    rcu::rcu_barrier(ctx);
    assert_eq!(ran.load(Ordering::Relaxed), 50 * smp::num_online());
    let (queued, invoked) = rcu::stats::callback_counts();
    assert_eq!(queued, invoked, "rcu_barrier returned with callbacks outstanding");
}

/// An object retired on core `cpu` as number `idx` when `snap` was the grace period it needed:
/// its drop logs `(idx, snap, grace periods completed)` on its core and counts itself.
struct Tracked {
    cpu: usize,
    idx: usize,
    snap: u64,
    log: CallbackLog,
    drops: Arc<Vec<AtomicUsize>>,
    head: rcu::RcuHead,
}

// SAFETY: HEAD_OFFSET is the offset of `head`, an RcuHead nothing else uses.
unsafe impl rcu::RcuHeaded for Tracked {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Tracked, head);
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log[self.cpu].lock().push((self.idx, self.snap, rcu::stats::completed()));
        self.drops[self.cpu * RETIRES + self.idx].fetch_add(1, Ordering::Relaxed);
    }
}

const RETIRES: usize = 240;

/// Every kind of callback, interleaved on every core: `kfree_rcu` of a box with an `RcuHead`,
/// an `RcuCell`'s `Retired`, an `RcuList`'s `Removed` (the three intrusive forms) and a
/// `call_rcu` closure. Each object is freed exactly once, not before the grace period it needed,
/// in queue order per core, and one `rcu_barrier` waits for all of them.
fn intrusive_and_closure_callbacks_free_once_in_order_after_a_grace_period(ctx: &mut Ctx) {
    use quiescent::rcu::cell::RcuCell;
    let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
    let drops: Arc<Vec<AtomicUsize>> =
        Arc::new((0..quiescent::MAX_CPUS * RETIRES).map(|_| AtomicUsize::new(0)).collect());
    let (l2, d2) = (log.clone(), drops.clone());
    test::on_all_cores(ctx, move |cpu, ctx| {
        let cell: RcuCell<Tracked> = RcuCell::new();
        let list: RcuList<Tracked> = RcuList::new();
        for idx in 0..RETIRES {
            let snap = rcu::stats::started() + 1;
            let t = Tracked { cpu, idx, snap, log: l2.clone(), drops: d2.clone(), head: rcu::RcuHead::new() };
            match idx % 4 {
                0 => rcu::kfree_rcu(Box::new(t)),
                1 => {
                    drop(cell.replace(t)); // empty before: nothing retired yet
                    let r = cell.take().expect("the object just published");
                    assert_eq!((r.cpu, r.idx), (cpu, idx));
                    // Retire under a reader of this core: the object must outlive the section.
                    let g = rcu::read(ctx);
                    assert!(cell.read(&g).is_none());
                    drop(r);
                    assert_eq!(d2[cpu * RETIRES + idx].load(Ordering::Relaxed), 0, "Retired freed at once");
                    drop(g);
                }
                2 => {
                    list.add_head(t);
                    let r = list.remove(|t| t.idx == idx).expect("the node just added");
                    drop(r);
                    assert_eq!(d2[cpu * RETIRES + idx].load(Ordering::Relaxed), 0, "Removed freed at once");
                }
                _ => rcu::call_rcu(move |_| drop(t)),
            }
            if idx % 61 == 0 {
                rcu::rcu_quiescent_state(ctx); // lets earlier grace periods end (and callbacks run) mid-way
            }
        }
    });
    rcu::rcu_barrier(ctx);
    for cpu in smp::online_cpus() {
        let l = log[cpu].lock();
        assert_eq!(l.len(), RETIRES, "core {}: {} objects freed after rcu_barrier", cpu, l.len());
        for (k, &(idx, snap, done)) in l.iter().enumerate() {
            assert_eq!(idx, k, "core {}: callbacks out of queue order", cpu);
            assert!(done >= snap, "core {}: object {} freed before its grace period ({} < {})", cpu, idx, done, snap);
        }
        for idx in 0..RETIRES {
            let n = drops[cpu * RETIRES + idx].load(Ordering::Relaxed);
            assert_eq!(n, 1, "core {}: object {} freed {} times", cpu, idx, n);
        }
    }
}

/// `rcu_barrier` waits for intrusive callbacks (no closure queued anywhere but its markers).
fn rcu_barrier_waits_for_intrusive_callbacks(ctx: &mut Ctx) {
    let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
    let drops: Arc<Vec<AtomicUsize>> =
        Arc::new((0..quiescent::MAX_CPUS * RETIRES).map(|_| AtomicUsize::new(0)).collect());
    let (l2, d2) = (log.clone(), drops.clone());
    test::on_all_cores(ctx, move |cpu, _| {
        for idx in 0..50 {
            let snap = rcu::stats::started() + 1;
            rcu::kfree_rcu(Box::new(Tracked {
                cpu,
                idx,
                snap,
                log: l2.clone(),
                drops: d2.clone(),
                head: rcu::RcuHead::new(),
            }));
        }
    });
    rcu::rcu_barrier(ctx);
    let freed: usize = drops.iter().map(|d| d.load(Ordering::Relaxed)).sum();
    assert_eq!(freed, 50 * smp::num_online(), "rcu_barrier returned before every kfree_rcu ran");
    let (queued, invoked) = rcu::stats::callback_counts();
    assert_eq!(queued, invoked, "rcu_barrier returned with callbacks outstanding");
}

/// Retiring through `RcuCell`, `RcuList` and `kfree_rcu` allocates nothing (the heap's
/// allocation count does not move), and the closure form allocates one box per call. Measured
/// on this core while the others idle.
fn retiring_allocates_nothing(ctx: &mut Ctx) {
    use quiescent::heap::allocations;
    use quiescent::rcu::cell::RcuCell;
    const N: usize = 200;
    rcu::rcu_barrier(ctx);
    let cell: RcuCell<u64> = RcuCell::new();
    let mut retired = Vec::with_capacity(N);
    for i in 0..N as u64 {
        if let Some(r) = cell.replace(i) {
            retired.push(r);
        }
    }
    let list: RcuList<u64> = RcuList::new();
    for i in 0..N as u64 {
        list.add_head(i);
    }
    let mut removed = Vec::with_capacity(N);
    for i in 0..N as u64 {
        removed.push(list.remove(|&v| v == i).expect("added above"));
    }
    let boxes: Vec<Box<Tracked>> = {
        let log: CallbackLog = Arc::new((0..quiescent::MAX_CPUS).map(|_| spin::Mutex::new(Vec::new())).collect());
        let drops: Arc<Vec<AtomicUsize>> =
            Arc::new((0..quiescent::MAX_CPUS * RETIRES).map(|_| AtomicUsize::new(0)).collect());
        (0..N)
            .map(|idx| {
                Box::new(Tracked {
                    cpu: 0,
                    idx: idx % RETIRES,
                    snap: 0,
                    log: log.clone(),
                    drops: drops.clone(),
                    head: rcu::RcuHead::new(),
                })
            })
            .collect()
    };
    let a0 = allocations();
    while let Some(r) = retired.pop() {
        drop(r);
    }
    let a1 = allocations();
    while let Some(r) = removed.pop() {
        drop(r);
    }
    let a2 = allocations();
    for b in boxes {
        rcu::kfree_rcu(b);
    }
    let a3 = allocations();
    for _ in 0..N {
        rcu::call_rcu(|_| ());
    }
    let a4 = allocations();
    assert_eq!(a1 - a0, 0, "dropping {} Retired allocated", N - 1);
    assert_eq!(a2 - a1, 0, "dropping {} Removed allocated", N);
    assert_eq!(a3 - a2, 0, "{} kfree_rcu allocated", N);
    assert_eq!(a4 - a3, N as u64, "the closure form allocates one box per call");
    rcu::rcu_barrier(ctx);
}

#[derive(Debug)]
struct Item {
    key: u64,
    a: u64,
    b: u64, // always a + 1: a torn or freed item breaks this
}

fn list_add_delete_replace_while_readers_iterate(ctx: &mut Ctx) {
    let list: Arc<RcuList<Item>> = Arc::new(RcuList::new());
    for k in 0..16 {
        list.add_head(Item { key: k, a: k, b: k + 1 });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (l2, s2) = (list.clone(), stop.clone());
    let o = others();
    let readers = Arc::new(AtomicUsize::new(o.len()));
    let seen = Arc::new(AtomicU64::new(0));
    for &c in &o {
        let (l, s, r, n) = (l2.clone(), s2.clone(), readers.clone(), seen.clone());
        smp::queue_work(c, move |ctx| {
            while !s.load(Ordering::Acquire) {
                let g = rcu::read(ctx);
                for it in l.iter(&g) {
                    assert_eq!(it.b, it.a + 1, "reader saw a torn item {:?}", it.key);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                drop(g);
                rcu::rcu_quiescent_state(ctx);
            }
            r.fetch_sub(1, Ordering::Release);
        });
    }
    let freed_before = rcu::stats::callback_counts().1;
    // A third of the rounds wait for a grace period, which waits for every busy reader's next
    // quiescent state: past 8 cores (more vCPUs than the host has cores) fewer rounds, so the
    // case stays within seconds (1500 on up to 8 cores, 187 on 64).
    let rounds = 1500 * 8 / smp::num_online().max(8) as u64;
    for round in 0..rounds {
        let k = round % 16;
        match round % 3 {
            0 => {
                if let Some(r) = list.remove(|it| it.key == k) {
                    r.free_rcu();
                    list.add_head(Item { key: k, a: round, b: round + 1 });
                }
            }
            1 => {
                if let Ok(r) = list.replace(|it| it.key == k, Item { key: k, a: round * 2, b: round * 2 + 1 }) {
                    r.free_rcu();
                }
            }
            _ => {
                if let Some(r) = list.remove(|it| it.key == k) {
                    r.free_after_sync(ctx);
                    list.add_head(Item { key: k, a: 7, b: 8 });
                }
            }
        }
        if round % 64 == 0 {
            rcu::rcu_quiescent_state(ctx);
        }
    }
    stop.store(true, Ordering::Release);
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "readers did not stop");
        readers.load(Ordering::Acquire) != 0
    });
    rcu::rcu_barrier(ctx);
    assert_eq!(list.len(), 16);
    assert!(rcu::stats::callback_counts().1 > freed_before, "no node was freed through call_rcu");
    if !o.is_empty() {
        assert!(seen.load(Ordering::Relaxed) > 0, "readers never saw an item");
    }
}

/// The combining tree has the leaf size the command line asked for (`rcu_leaf=N`, else 16; at
/// least what fits this run's cores in 64 leaves), so the runs with small leaves really
/// spread their cores over several leaves.
fn tree_has_the_leaf_size_asked_for(_ctx: &mut Ctx) {
    let asked = quiescent::board::bootarg("rcu_leaf").map(|v| v.parse::<usize>().expect("rcu_leaf=N"));
    let min = smp::num_possible().div_ceil(64).max(1);
    assert_eq!(rcu::stats::leaf_size(), asked.unwrap_or(16).clamp(min, 64), "rcu leaf size");
    if asked.is_some_and(|a| a >= min) {
        let leaves = smp::online_cpus().map(|c| c / rcu::stats::leaf_size()).max().unwrap_or(0) + 1;
        assert!(smp::num_online() <= 1 || leaves > 1, "the run asked for small leaves but has one leaf");
    }
}

/// Each core in turn holds a grace period open from inside a read-side section: with small
/// leaves every leaf, and the root's bit for it, must keep the grace period from ending.
fn grace_period_waits_for_a_reader_on_every_core(ctx: &mut Ctx) {
    for c in others() {
        let release = spin_on(ctx, c, true, "the reader");
        let cookie = rcu::start_poll_synchronize_rcu();
        let t0 = arch::counter();
        // 20 ms of quiescent waiting (other cores report and sleep meanwhile).
        rcu::wait_quiescent(ctx, || {
            assert!(!rcu::poll_state_synchronize_rcu(cookie), "a grace period ended while core {} was a reader", c);
            arch::ticks_to_ns(arch::counter() - t0) < 20_000_000
        });
        release.store(true, Ordering::Release);
        test::wait_until(ctx, 5000, "the grace period after the reader", || rcu::poll_state_synchronize_rcu(cookie));
    }
}

fn stall_detector_names_a_core_that_holds_up_a_grace_period(ctx: &mut Ctx) {
    let o = others();
    if o.is_empty() {
        return;
    }
    // The first and the last of the others: with small leaves, in different leaves.
    stall_named(ctx, o[0]);
    if o.len() > 1 {
        stall_named(ctx, o[o.len() - 1]);
    }
}

fn stall_named(ctx: &mut Ctx, c: usize) {
    rcu::stats::set_stall_timeout_ms(150);
    let release = spin_on(ctx, c, true, "the stalling reader");
    let (stalls, _) = rcu::stats::stalls();
    let cookie = rcu::start_poll_synchronize_rcu();
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "no stall reported for core {}", c);
        rcu::stats::stalls().0 == stalls
    });
    assert_eq!(rcu::stats::stalls().1, Some(c), "the stall report named the wrong core");
    assert!(!rcu::poll_state_synchronize_rcu(cookie), "the grace period ended while the core stalled it");
    // Once per stall: it stays at one report while the stall lasts.
    let t1 = arch::counter();
    rcu::wait_quiescent(ctx, || arch::ticks_to_ns(arch::counter() - t1) < 300_000_000);
    assert_eq!(rcu::stats::stalls().0, stalls + 1, "the same stall was reported twice");
    release.store(true, Ordering::Release);
    stall_ends(ctx, cookie);
}

/// After a stall is released: the grace period it held up completes (within 5 s), and the
/// stall timeout goes back to its default.
fn stall_ends(ctx: &mut Ctx, cookie: u64) {
    let t = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(
            arch::ticks_to_ns(arch::counter() - t) < 5_000_000_000,
            "the grace period never completed after the stall"
        );
        !rcu::poll_state_synchronize_rcu(cookie)
    });
    rcu::stats::set_stall_timeout_ms(3000);
}

/// The stalling core is the one whose tick runs (this one, in a reader with interrupts on),
/// while every other core sleeps in its idle loop and so takes no tick: it must name itself
/// (with no PC: it cannot interrupt itself for one), not wait for another core's scan.
fn stall_on_the_only_ticking_core_is_named(ctx: &mut Ctx) {
    rcu::stats::set_stall_timeout_ms(150);
    let (stalls, _) = rcu::stats::stalls();
    let cookie = rcu::start_poll_synchronize_rcu();
    let t0 = arch::counter();
    {
        let _g = rcu::read(ctx);
        while rcu::stats::stalls().0 == stalls {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "no stall reported for core 0");
            core::hint::spin_loop();
        }
    }
    assert_eq!(rcu::stats::stalls().1, Some(0), "the stall report named the wrong core");
    stall_ends(ctx, cookie);
}

const LIVE: u64 = 0x4c49_5645; // "LIVE"
const POISON: u64 = 0x6b6b_6b6b_6b6b_6b6b;

/// An object that is "freed" by poisoning it (and leaked), so a late reader reads the poison
/// instead of memory handed back to the allocator.
struct Obj {
    magic: AtomicU64,
}

fn magic_of(p: *mut Obj) -> u64 {
    // SAFETY: Obj allocations are leaked, never freed: `p` stays valid (a "freed" one is
    // poisoned, which is what the reader checks).
    unsafe { (*p).magic.load(Ordering::Acquire) }
}

/// Queues a work item on `cpu` that sits in a blocking wait (an extended quiescent state, with
/// interrupts enabled) until the returned flag is set.
fn park_in_quiescent_wait(ctx: &mut Ctx, cpu: usize) -> Arc<AtomicBool> {
    let (inside, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (i2, r2) = (inside.clone(), release.clone());
    smp::queue_work(cpu, move |ctx| {
        i2.store(true, Ordering::Release);
        rcu::wait_quiescent(ctx, || !r2.load(Ordering::Acquire));
    });
    wait_flag(ctx, &inside, "the quiescent waiter");
    release
}

/// Review hazard 1: an interrupt handler on a core that sits in a blocking wait (an extended
/// quiescent state) is a reader: a grace period must wait for it. The handler holds an object
/// it dereferenced; the updater replaces it, calls synchronize_rcu and poisons it. Before the
/// IRQ entry left the extended quiescent state, synchronize_rcu returned at once and the
/// handler read the poison.
fn interrupt_handler_on_a_quiescent_waiting_core_is_a_reader(ctx: &mut Ctx) {
    let o = others();
    if o.len() < 2 {
        return; // needs a waiting core and a core to send it the call
    }
    let (waiter, sender) = (o[0], o[1]);
    let release_waiter = park_in_quiescent_wait(ctx, waiter);
    let ptr = Arc::new(AtomicPtr::new(Box::into_raw(Box::new(Obj { magic: AtomicU64::new(LIVE) }))));
    let (inside, freed, seen) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (p2, i2, f2, s2) = (ptr.clone(), inside.clone(), freed.clone(), seen.clone());
    smp::queue_work(sender, move |ctx| {
        let magic = ipi::call_function_single(ctx, waiter, move |actx| {
            let g = rcu::read(actx);
            let p = rcu::rcu_dereference(&p2, &g);
            i2.store(true, Ordering::Release);
            // Hold the reference until the updater says it poisoned the object, or 100 ms.
            let t0 = arch::counter();
            while !f2.load(Ordering::Acquire) && arch::ticks_to_ns(arch::counter() - t0) < 100_000_000 {
                arch::cpu_relax();
            }
            let m = magic_of(p);
            drop(g);
            m
        });
        s2.store(magic, Ordering::Release);
    });
    wait_flag(ctx, &inside, "the interrupt handler's read");
    let old = ptr.load(Ordering::Relaxed);
    rcu::rcu_assign_pointer(&ptr, Box::into_raw(Box::new(Obj { magic: AtomicU64::new(LIVE) })));
    rcu::synchronize_rcu(ctx);
    // SAFETY: leaked allocation (see magic_of).
    unsafe { (*old).magic.store(POISON, Ordering::Release) };
    freed.store(true, Ordering::Release);
    let t0 = arch::counter();
    rcu::wait_quiescent(ctx, || {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "the interrupt handler never returned");
        seen.load(Ordering::Acquire) == 0
    });
    release_waiter.store(true, Ordering::Release);
    assert_eq!(
        seen.load(Ordering::Relaxed),
        LIVE,
        "the handler's object was freed under it: synchronize_rcu did not wait for an interrupt handler"
    );
}

/// Review hazard 2: `let _ = list.remove(..)` must not free the node under a reader.
fn dropping_a_removed_node_frees_it_after_a_grace_period(ctx: &mut Ctx) {
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Counted(u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::Release);
        }
    }
    let list = RcuList::new();
    list.add_head(Counted(2));
    list.add_head(Counted(1));
    let before = DROPPED.load(Ordering::Acquire);
    {
        let g = rcu::read(ctx);
        let mut it = list.iter(&g);
        assert_eq!(it.next().map(|c| c.0), Some(1));
        // The updater drops what remove returns at once (on the reader's own core here: in QSBR
        // this core is a reader until its next quiescent point).
        let _ = list.remove(|c| c.0 == 2);
        // The reader steps onto the removed node: still there (debug builds check its magic).
        assert_eq!(it.next().map(|c| c.0), Some(2), "the reader lost the removed node");
        assert_eq!(DROPPED.load(Ordering::Acquire), before, "dropping a removed node freed it at once");
    }
    rcu::rcu_barrier(ctx);
    assert_eq!(DROPPED.load(Ordering::Acquire), before + 1, "the removed node was never freed");
    let _ = list.replace(|c| c.0 == 1, Counted(3));
    assert_eq!(DROPPED.load(Ordering::Acquire), before + 1, "dropping a replaced node freed it at once");
    rcu::rcu_barrier(ctx);
    assert_eq!(DROPPED.load(Ordering::Acquire), before + 2, "the replaced node was never freed");
}

/// Review hazard 3: rcu_barrier works from every core (it used to need core 0's work queue),
/// while core 0 itself is blocked waiting for the caller: core 0's own callbacks, the marker
/// among them, run inside its wait.
fn rcu_barrier_works_from_every_core(ctx: &mut Ctx) {
    for caller in smp::online_cpus() {
        let ran = Arc::new(AtomicUsize::new(0));
        let r2 = ran.clone();
        test::on_all_cores(ctx, move |_, _| {
            for _ in 0..20 {
                let r = r2.clone();
                rcu::call_rcu(move |_| {
                    r.fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        smp::call_on(ctx, caller, rcu::rcu_barrier);
        assert_eq!(
            ran.load(Ordering::Relaxed),
            20 * smp::num_online(),
            "rcu_barrier on core {} returned early",
            caller
        );
    }
}

quiescent::tests!(
    // First, before any grace period has run: the very first one must wait too.
    grace_period_waits_for_a_preexisting_reader,
    grace_period_on_this_core_alone_completes,
    grace_period_does_not_wait_for_later_readers,
    polling_cookies_complete_only_after_their_readers,
    polling_cookies_across_many_grace_periods,
    rcu_cell_readers_never_see_a_retired_object_freed,
    grace_period_completes_while_others_sleep_and_wakes_none,
    concurrent_callers_share_grace_periods,
    callers_during_one_grace_period_share_the_next,
    call_rcu_runs_after_a_grace_period_once_in_order,
    rcu_barrier_waits_for_every_queued_callback,
    rcu_barrier_works_from_every_core,
    intrusive_and_closure_callbacks_free_once_in_order_after_a_grace_period,
    rcu_barrier_waits_for_intrusive_callbacks,
    retiring_allocates_nothing,
    interrupt_handler_on_a_quiescent_waiting_core_is_a_reader,
    dropping_a_removed_node_frees_it_after_a_grace_period,
    list_add_delete_replace_while_readers_iterate,
    tree_has_the_leaf_size_asked_for,
    grace_period_waits_for_a_reader_on_every_core,
    no_stall_reported_so_far,
    stall_detector_names_a_core_that_holds_up_a_grace_period,
    stall_on_the_only_ticking_core_is_named,
);
