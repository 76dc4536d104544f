//! The per-core idle loop, the hooks it calls, and shutdown: parking the other cores and ending
//! the run.

use super::work::{pop, QUEUES};
use super::{ipi, num_online, online_cpus, tick, wait_until, Ctx, IdleHooks};
use crate::arch;
use crate::board;
use crate::percpu::cpu_id;
use crate::MAX_CPUS;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The idle hooks RCU installed, for this layer's bring-up, idle loop and parking.
#[inline]
pub(super) fn hooks() -> &'static IdleHooks {
    // SAFETY: the callers are this layer's bring-up (bringup.rs: cpu_online before the core is
    // published), idle loop (quiescent_point between work items, idle_enter/idle_needs_tick/
    // idle_exit around the sleep) and parking (cpu_dead), each where the hook's documentation says.
    unsafe { quiescent_platform::idle_hooks() }
}

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// Counts, per core, the times the idle loop woke from its WFI sleep (observable by tests).
static WAKEUPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Counts, per core, the work items run.
static ITEMS_RUN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Whether each core is (about to be) asleep in its idle loop's WFI.
pub(super) static SLEEPING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Whether core `cpu` is asleep in its idle loop (observable by tests).
pub fn is_sleeping(cpu: usize) -> bool {
    SLEEPING[cpu].load(Ordering::Relaxed)
}

/// Times core `cpu` woke from its idle sleep.
pub fn wakeups(cpu: usize) -> u64 {
    WAKEUPS[cpu].load(Ordering::Relaxed)
}

/// Work items core `cpu` has run.
pub fn items_run(cpu: usize) -> u64 {
    ITEMS_RUN[cpu].load(Ordering::Relaxed)
}

/// The quiescent point between work items (the installed hook: RCU reports a quiescent state
/// and runs this core's ready callbacks). Takes the context `&mut`: no reference from a read
/// section can be live across it.
#[inline]
pub fn quiescent_point(ctx: &mut Ctx) {
    (hooks().quiescent_point)(ctx)
}

/// The per-core loop: run queued work, otherwise sleep until woken.
///
/// The sleep is WFI with interrupts masked (Linux's `arch_cpu_idle` pattern): a pending
/// interrupt still ends WFI, and it is only taken after the loop unmasks, so an IPI that arrives
/// between the last check and the WFI cannot be consumed early and lost. No lost wake-up: the
/// sleeper sets `SLEEPING`, `smp_mb`, re-checks its queue; a producer pushes, `smp_mb`, reads
/// `SLEEPING` and sends the Wake IPI if set (a store-buffering pair: at least one side sees the
/// other). (QEMU's TCG treats WFE as a yield, so WFE would not really sleep there.)
pub(crate) fn idle_loop() -> ! {
    let me = cpu_id();
    // SAFETY: this loop is the core's thread of execution: RCU watches it (the online hook ran,
    // and idle_exit runs after every sleep), and nothing else on this core holds a context.
    let ctx = &mut unsafe { Ctx::new() };
    loop {
        if let Some(w) = pop(me) {
            w(ctx);
            ITEMS_RUN[me].fetch_add(1, Ordering::Relaxed);
            quiescent_point(ctx);
            continue;
        }
        if SHUTDOWN.load(Ordering::Acquire) {
            park();
        }
        let flags = arch::local_irq_save();
        let may_sleep = (hooks().idle_enter)();
        SLEEPING[me].store(true, Ordering::Relaxed);
        arch::smp_mb(); // SLEEPING before re-reading the queue; pairs with the smp_mb in queue_work
        if may_sleep && QUEUES[me].pending.load(Ordering::Relaxed) == 0 && !SHUTDOWN.load(Ordering::Relaxed) {
            // No tick while asleep (see `tick`): only IPIs wake an idle core, so hundreds of
            // idle cores cost nothing.
            let keep_tick = (hooks().idle_needs_tick)();
            if !keep_tick {
                tick::idle_stop();
            }
            arch::wfi();
            if !keep_tick {
                tick::idle_restart();
            }
            WAKEUPS[me].fetch_add(1, Ordering::Relaxed);
        }
        SLEEPING[me].store(false, Ordering::Relaxed);
        (hooks().idle_exit)();
        arch::local_irq_restore(flags); // a pending tick or IPI is taken here
        quiescent_point(ctx);
    }
}

/// Masks interrupts and parks this core for good (shutdown, Stop IPI).
pub(crate) fn park() -> ! {
    let _ = arch::local_irq_save();
    tick::stop_tick();
    // Grace periods must not wait for a parked core (it may be parked from inside a handler).
    (hooks().cpu_dead)();
    PARKED.fetch_add(1, Ordering::Release);
    loop {
        arch::wfe();
    }
}

/// Asks every other core to finish its queued work and park, waits for them (briefly), flushes
/// the console and exits QEMU with `code`. Cores that are busy (not in the idle loop) are
/// stopped with the Stop IPI.
pub fn shutdown(code: i32) -> ! {
    SHUTDOWN.store(true, Ordering::Release);
    arch::smp_mb(); // the flag before reading SLEEPING; pairs with the smp_mb in idle_loop
    for c in online_cpus().filter(|&c| c != cpu_id()) {
        if SLEEPING[c].load(Ordering::Relaxed) {
            ipi::send(c, ipi::Ipi::Wake);
        }
    }
    let others = num_online() - 1;
    // With many more vCPUs than host cores each core needs its turn on the host to park: 50 ms
    // per core on top of the fixed wait.
    let per_core = 50 * others as u64;
    if !wait_until(200 + per_core, || PARKED.load(Ordering::Acquire) >= others) {
        ipi::stop_others();
        if !wait_until(300 + per_core, || PARKED.load(Ordering::Acquire) >= others) {
            let parked = PARKED.load(Ordering::Acquire);
            defmt::error!("shutdown: only {} of {} other cores parked", parked, others);
            if code == 0 {
                exit(EXIT_NOT_PARKED);
            }
        }
    }
    exit(code)
}

/// Exit code when the image passed but a core would not park at shutdown.
pub const EXIT_NOT_PARKED: i32 = 103;

/// Ends the run with `code`: on QEMU through semihosting (the host sees it as QEMU's exit
/// status); on a board without a debugger, the board prints it and parks.
pub fn exit(code: i32) -> ! {
    crate::console::flush();
    board::exit(code)
}
