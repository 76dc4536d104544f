//! Bring-up: which of the listed cores this run uses, starting them, and each core's interrupt
//! state as it comes online.

use super::idle::{hooks, idle_loop};
use super::{ipi, is_online, mpidr_of, num_possible, tick, wait_until, LISTED, MPIDR};
use crate::arch;
use crate::board::{self, BootInfo};
use crate::MAX_CPUS;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use quiescent_platform::cpu;

/// Default rate of the per-core tick.
pub const DEFAULT_TICK_HZ: u32 = 100;
static TICK_HZ: AtomicU32 = AtomicU32::new(DEFAULT_TICK_HZ);

/// How long core 0 waits for a started core to report in.
const ONLINE_TIMEOUT_MS: u64 = 2000;

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

/// The tick rate cores start with (set before bring-up to change it).
pub fn set_default_tick_hz(hz: u32) {
    TICK_HZ.store(hz, Ordering::Relaxed);
}
