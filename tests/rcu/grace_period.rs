//! Grace periods: one waits for every reader that was inside when it began (on any core, in an
//! interrupt handler on a core in a blocking wait too) and for no later one; concurrent callers
//! share them; sleeping cores are not woken.

use super::{LIVE, POISON};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use quiescent::arch;
use quiescent::rcu;
use quiescent::smp::tick as timer;
use quiescent::smp::{ipi, Ctx};
use quiescent::test::{others, spin_on, wait_flag};
use quiescent::{smp, test};

pub(super) fn grace_period_on_this_core_alone_completes(ctx: &mut Ctx) {
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

pub(super) fn grace_period_waits_for_a_preexisting_reader(ctx: &mut Ctx) {
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

pub(super) fn grace_period_does_not_wait_for_later_readers(ctx: &mut Ctx) {
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

pub(super) fn grace_period_completes_while_others_sleep_and_wakes_none(ctx: &mut Ctx) {
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

pub(super) fn concurrent_callers_share_grace_periods(ctx: &mut Ctx) {
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

pub(super) fn callers_during_one_grace_period_share_the_next(ctx: &mut Ctx) {
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
pub(super) fn interrupt_handler_on_a_quiescent_waiting_core_is_a_reader(ctx: &mut Ctx) {
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
