//! Core bring-up, the per-core idle loop, and cross-core work.
//!
//! After bring-up every core but 0 runs `idle_loop`: run the work queued for it, one item at a
//! time, and sleep with WFI when there is none. Any core queues work for any other with
//! [`queue_work`], which sends a Wake IPI if the target sleeps; the wake-up cannot be lost (see
//! `idle_loop`). [`call_on`] runs a function on another core and
//! waits for its result (Linux's `smp_call_function_single`); [`on_each_cpu`] runs one everywhere.
//!
//! The loop reaches the layer above (RCU) only through the hooks that layer installs with
//! [`set_idle_hooks`]: a quiescent point between work items (nothing of the previous item is
//! still in use), idle enter/exit around the sleep, the blocking wait, and a core coming online
//! or parking for good. This layer never names RCU.

use crate::arch;
use crate::board::{self, BootInfo};
use crate::percpu::cpu_id;
use crate::MAX_CPUS;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub mod ipi;
mod kernel;
pub mod tick;

use quiescent_platform::cpu;
pub use quiescent_platform::cpu::{is_online, num_online, num_possible, online_cpus};

/// The idle hooks RCU installed, for this file's bring-up, idle loop and parking.
#[inline]
fn hooks() -> &'static IdleHooks {
    // SAFETY: the callers are this file's bring-up (cpu_online before the core is published),
    // idle loop (quiescent_point between work items, idle_enter/idle_needs_tick/idle_exit around
    // the sleep) and parking (cpu_dead), each where the hook's documentation says.
    unsafe { quiescent_platform::idle_hooks() }
}
pub use quiescent_platform::{set_idle_hooks, wait_event, wake_up_all, AtomicCtx, Completion, Ctx, IdleHooks};

/// Default rate of the per-core tick.
pub const DEFAULT_TICK_HZ: u32 = 100;
static TICK_HZ: AtomicU32 = AtomicU32::new(DEFAULT_TICK_HZ);

/// Cores the board listed (may exceed what this run uses).
static LISTED: AtomicUsize = AtomicUsize::new(1);
/// MPIDR of each logical core (8 bytes per core of MAX_CPUS: 4 KiB).
static MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// How long core 0 waits for a started core to report in.
const ONLINE_TIMEOUT_MS: u64 = 2000;

/// Cores the board described (DTB `/cpus` or the board's fixed count).
pub fn num_listed() -> usize {
    LISTED.load(Ordering::Relaxed)
}

/// MPIDR of logical core `cpu` (PSCI `CPU_ON`'s target, the SGI routing of its GIC).
pub fn mpidr_of(cpu: usize) -> u64 {
    MPIDR[cpu].load(Ordering::Relaxed)
}

/// The logical core whose MPIDR affinity is `mpidr`, if this run set it up.
pub fn cpu_of_mpidr(mpidr: u64) -> Option<usize> {
    (0..num_possible()).find(|&c| MPIDR[c].load(Ordering::Relaxed) == mpidr)
}

fn wait_until(timeout_ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = arch::counter();
    let limit = arch::counter_freq() * timeout_ms / 1000;
    while !done() {
        if arch::counter().wrapping_sub(start) > limit {
            return false;
        }
        arch::cpu_relax();
    }
    true
}

/// Most cores this run uses: MAX_CPUS, or fewer with `maxcpus=N` on the command line (as
/// Linux's `maxcpus=`).
pub fn cpu_limit() -> usize {
    let asked = board::bootarg("maxcpus").and_then(|v| v.parse::<usize>().ok()).unwrap_or(MAX_CPUS);
    asked.clamp(1, MAX_CPUS)
}

/// Decides which of the listed cores this run uses (core 0, on boot, before per-core memory is
/// allocated): the first `min(listed, MAX_CPUS, maxcpus=, the GIC's reach)`. The others are
/// named and left off. Returns how many (also [`num_possible`]).
pub(crate) fn plan_cpus(info: &BootInfo) -> usize {
    LISTED.store(info.listed, Ordering::Relaxed);
    let gic_max = info.gic.max_cores();
    if info.listed > gic_max {
        defmt::error!(
            "GICv{} reaches at most {} cores but {} are listed: cores {}.. are left off. Boot with GICv3 \
             for more (QEMU: -machine virt,gic-version=3; the runner: `make run SMP={} GIC=3`, `qrun --gic 3`)",
            info.gic.version(),
            gic_max,
            info.listed,
            gic_max,
            info.listed
        );
    }
    let limit = cpu_limit().min(gic_max);
    for (cpu, &m) in info.mpidr.iter().enumerate().skip(limit) {
        defmt::warn!(
            "core {} (MPIDR {=u64:#x}) is beyond the limit of {} cores (MAX_CPUS {}, maxcpus={}, GICv{}); left off",
            cpu,
            m,
            limit,
            MAX_CPUS,
            board::bootarg("maxcpus").unwrap_or("-"),
            info.gic.version()
        );
    }
    if info.listed > MAX_CPUS {
        defmt::warn!(
            "{} cores listed, this build supports {} (MAX_CPUS); the rest are left off",
            info.listed,
            MAX_CPUS
        );
    }
    let n = info.listed.min(limit);
    for (cpu, &m) in info.mpidr.iter().enumerate().take(n) {
        MPIDR[cpu].store(m, Ordering::Relaxed);
    }
    // SAFETY: at boot, on core 0, before the other cores start and before RCU is initialised
    // (plan_cpus runs first in the runtime's boot order).
    unsafe { cpu::set_possible(n) };
    n
}

/// Lowers the number of cores this run sets up to `n` (the runtime could give memory to only
/// that many; it reported why). Boot only, before the other cores start: afterwards grace
/// periods and percpu-rwsem's fold would stop looking at cores that are running, hence not
/// public.
pub(crate) fn limit_cpus(n: usize) {
    // SAFETY: as in plan_cpus: boot only, before the other cores start.
    unsafe { cpu::limit_possible(n) };
}

/// Cores started together before core 0 waits for them to report in.
const BOOT_BATCH: usize = 16;

/// Starts every other core [`plan_cpus`] kept, [`BOOT_BATCH`] at a time, waits for each batch to
/// report in and names each core that did not. One at a time, core 0 spun for each in turn
/// (about a second per core with hundreds of vCPUs on a few host cores); all at once, QEMU's
/// hundreds of starting vCPU threads starved each other.
///
/// A batch's time runs from its first start, so a core 0 that is itself starved of host time
/// (it starts its batch slower than the cores come up) is named too: the batch's cores are
/// named as late even when every one came online, rather than bring-up going on ever slower
/// without a word (as at 512 cores when idle cores still took the tick).
pub(crate) fn boot_secondaries() {
    let entry = arch::secondary_entry_addr();
    let n = num_possible();
    // Past 8 cores each gets a share of the host's time: 20 ms more per core present.
    let timeout_ms = ONLINE_TIMEOUT_MS + 20 * n.saturating_sub(8) as u64;
    let cpus: Vec<usize> = (1..n).collect();
    for batch in cpus.chunks(BOOT_BATCH) {
        let batch_start = arch::counter();
        let mut started = Vec::with_capacity(batch.len());
        for &cpu in batch {
            let mpidr = mpidr_of(cpu);
            // The new core reads its per-cpu area and the heap's state: make core 0's writes
            // visible before it starts. The PSCI call (or the spin-table release) is the
            // synchronisation point; this dsb pairs with the secondary's first loads after it
            // enters.
            arch::dsb_ish();
            // SAFETY: `entry` is secondary_entry, and `cpu` got its stack slot and per-cpu area
            // from the runtime (plan_cpus and the per-core region come first).
            match unsafe { board::start_cpu(cpu, mpidr, entry) } {
                Ok(()) => started.push(cpu),
                Err(e) => defmt::error!(
                    "core {} (MPIDR {=u64:#x}) not started: start error {}",
                    cpu,
                    mpidr,
                    defmt::Debug2Format(&e)
                ),
            }
        }
        let left_ms = timeout_ms.saturating_sub(arch::ticks_to_ns(arch::counter() - batch_start) / 1_000_000);
        wait_until(left_ms, || started.iter().all(|&c| is_online(c)));
        let took_ms = arch::ticks_to_ns(arch::counter() - batch_start) / 1_000_000;
        let late = started.iter().filter(|&&c| !is_online(c)).count();
        for &cpu in started.iter().filter(|&&c| !is_online(c)) {
            defmt::error!("core {} (MPIDR {=u64:#x}) did not come online within {} ms", cpu, mpidr_of(cpu), timeout_ms);
        }
        if late == 0 && took_ms > timeout_ms {
            defmt::warn!(
                "cores {}..={} came online, but only {} ms after the first was started ({} ms allowed): \
                 core 0 itself is short of host time (more vCPU work than the host emulates in real time?)",
                batch[0],
                batch[batch.len() - 1],
                took_ms,
                timeout_ms
            );
        }
    }
}

/// Brings up this core's interrupt state (GIC CPU interface, periodic tick); interrupts stay
/// masked until the caller unmasks them.
pub(crate) fn init_local_interrupts(cpu: usize) {
    crate::drivers::gic::init_cpu(cpu);
    tick::start_tick(TICK_HZ.load(Ordering::Relaxed));
}

/// Installs this layer's interrupt handlers (the IPIs and the tick) with the GIC; on core 0,
/// once, after the distributor is up and before any core unmasks interrupts.
pub(crate) fn init() {
    ipi::init();
    tick::init();
}

/// Core 0 joins: its interrupt state, then the online hook (RCU starts watching it). Its bit in
/// `ONLINE` is set from the start. Interrupts stay masked until the caller unmasks them.
pub(crate) fn boot_cpu_online() {
    init_local_interrupts(0);
    (hooks().cpu_online)();
}

/// First Rust code of a secondary core after its per-cpu area is set: report in, then idle.
pub(crate) fn secondary_online(cpu: usize) -> ! {
    init_local_interrupts(cpu);
    (hooks().cpu_online)();
    // SAFETY: on this core, once, after its online hook and before its first reader: interrupts
    // stay masked until here, and the idle loop's first work item comes after (set_online ends
    // with barrier O, which orders the bit before them).
    unsafe { cpu::set_online(cpu) };
    arch::local_irq_enable();
    idle_loop()
}

// ---------------------------------------------------------------------------------------------
// Work queues and the idle loop.
// ---------------------------------------------------------------------------------------------

type Work = Box<dyn FnOnce(&mut Ctx) + Send>;

struct Queue {
    items: spin::Mutex<VecDeque<Work>>,
    /// Items queued, for the sleeper's lock-free check.
    pending: AtomicUsize,
}

static QUEUES: [Queue; MAX_CPUS] =
    [const { Queue { items: spin::Mutex::new(VecDeque::new()), pending: AtomicUsize::new(0) } }; MAX_CPUS];

/// Counts, per core, the times the idle loop woke from its WFI sleep (observable by tests).
static WAKEUPS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Counts, per core, the work items run.
static ITEMS_RUN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Whether each core is (about to be) asleep in its idle loop's WFI.
static SLEEPING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

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

/// Queues `f` to run on core `cpu`'s idle loop and wakes that core. Core 0 runs the image's
/// main function, not an idle loop: work for it would never run, so that is refused. `f` gets
/// the core's blocking context; the idle loop passes a quiescent point after it returns.
pub fn queue_work(cpu: usize, f: impl FnOnce(&mut Ctx) + Send + 'static) {
    assert!(is_online(cpu), "queue_work: core {} is not online", cpu);
    assert!(cpu != 0, "queue_work to core 0, which runs the image's main and no idle loop (from core {})", cpu_id());
    let q = &QUEUES[cpu];
    {
        let _irq = arch::IrqGuard::new();
        q.items.lock().push_back(Box::new(f));
        // Release pairs with the Acquire load in pop(), which then takes the lock anyway.
        q.pending.fetch_add(1, Ordering::Release);
    }
    // The push before reading SLEEPING; pairs with the smp_mb in idle_loop.
    arch::smp_mb();
    if SLEEPING[cpu].load(Ordering::Relaxed) && crate::drivers::gic::ready() {
        ipi::send(cpu, ipi::Ipi::Wake);
    }
}

fn pop(cpu: usize) -> Option<Work> {
    let q = &QUEUES[cpu];
    if q.pending.load(Ordering::Acquire) == 0 {
        return None;
    }
    let _irq = arch::IrqGuard::new();
    let w = q.items.lock().pop_front();
    if w.is_some() {
        q.pending.fetch_sub(1, Ordering::Relaxed);
    }
    w
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

/// Runs `f` on core `cpu` and waits for its result (on the calling core if `cpu` is this one),
/// as a blocking wait.
pub fn call_on<R: Send + 'static>(ctx: &mut Ctx, cpu: usize, f: impl FnOnce(&mut Ctx) -> R + Send + 'static) -> R {
    if cpu == cpu_id() {
        return f(ctx);
    }
    let slot: Arc<(spin::Mutex<Option<R>>, Completion)> = Arc::new((spin::Mutex::new(None), Completion::new()));
    let s2 = slot.clone();
    queue_work(cpu, move |ctx| {
        *s2.0.lock() = Some(f(ctx));
        s2.1.complete();
    });
    slot.1.wait(ctx);
    let r = slot.0.lock().take().expect("call_on: result missing");
    r
}

/// Runs `f(cpu, ctx)` on every online core at once (this one included) and returns the results
/// in core order. Waits for all of them.
pub fn on_each_cpu<R: Send + 'static>(
    ctx: &mut Ctx,
    f: impl Fn(usize, &mut Ctx) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let me = cpu_id();
    let f = Arc::new(f);
    let n = num_possible();
    let slots: Arc<Vec<spin::Mutex<Option<R>>>> = Arc::new((0..n).map(|_| spin::Mutex::new(None)).collect());
    let cpus: Vec<usize> = online_cpus().collect();
    let done = Arc::new(Completion::expecting(cpus.len() - 1));
    for &c in cpus.iter().filter(|&&c| c != me) {
        let (f, slots, done) = (f.clone(), slots.clone(), done.clone());
        queue_work(c, move |ctx| {
            *slots[c].lock() = Some(f(c, ctx));
            done.complete();
        });
    }
    let mine = f(me, ctx);
    *slots[me].lock() = Some(mine);
    done.wait(ctx);
    cpus.iter().map(|&c| slots[c].lock().take().expect("on_each_cpu: result missing")).collect()
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

/// The tick rate cores start with (set before bring-up to change it).
pub fn set_default_tick_hz(hz: u32) {
    TICK_HZ.store(hz, Ordering::Relaxed);
}

/// Exit code when the image passed but a core would not park at shutdown.
pub const EXIT_NOT_PARKED: i32 = 103;

/// Ends the run with `code`: on QEMU through semihosting (the host sees it as QEMU's exit
/// status); on a board without a debugger, the board prints it and parks.
pub fn exit(code: i32) -> ! {
    crate::console::flush();
    board::exit(code)
}
