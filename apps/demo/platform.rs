//! Demo scenario: what every core did at boot, its MMU state, tick rate and IPI round trip.

use alloc::vec::Vec;
use quiescent::arch::{self, mmu};
use quiescent::smp::tick as timer;
use quiescent::smp::{self, ipi, Ctx};
use quiescent::{percpu, MAX_CPUS};

/// Prints one line per core.
pub fn run(ctx: &mut Ctx) {
    let reports = smp::on_each_cpu(ctx, |cpu, _| {
        let (sctlr, _, _) = mmu::regs();
        (cpu, smp::mpidr_of(cpu), quiescent::entry_el(cpu), arch::current_el(), arch::tpidr(), sctlr, percpu::cpu_id())
    });
    // Tick rate, measured over 200 ms of counter time on every core at once, each busy
    // meanwhile (an idle core takes no tick).
    let rates: Vec<f64> = smp::on_each_cpu(ctx, |cpu, _| {
        let before = timer::ticks(cpu);
        let t0 = arch::counter();
        while arch::ticks_to_ns(arch::counter() - t0) < 200_000_000 {
            arch::cpu_relax();
        }
        let secs = arch::ticks_to_ns(arch::counter() - t0) as f64 / 1e9;
        (timer::ticks(cpu) - before) as f64 / secs
    });
    defmt::println!(
        "platform: counter {} Hz, tick configured at {} Hz, MAX_CPUS {}",
        arch::counter_freq(),
        timer::hz(),
        MAX_CPUS
    );
    for (i, (cpu, mpidr, entry_el, el, tpidr, sctlr, id)) in reports.into_iter().enumerate() {
        let on = |b: u64| if sctlr & (1 << b) != 0 { "on" } else { "off" };
        // IPI ping: the best of 20 cross-core calls (send SGI, run in the target's IRQ handler,
        // wake the caller), in counter time.
        let mut best = u64::MAX;
        if cpu != percpu::cpu_id() {
            for _ in 0..20 {
                let t = arch::counter();
                ipi::call_function_single(ctx, cpu, |_| ());
                best = best.min(arch::ticks_to_ns(arch::counter() - t));
            }
        }
        defmt::println!(
            "  core {}: MPIDR {=u64:#x}, entered at EL{}, runs at EL{}, MMU {=str}, D-cache {=str}, I-cache {=str}, TPIDR_EL1 {=usize:#x} (per-cpu id {}), tick {=u64} Hz, IPI ping from core 0: {=u64} ns",
            cpu, mpidr, entry_el, el, on(0), on(2), on(12), tpidr, id, rates[i] as u64,
            if best == u64::MAX { 0 } else { best }
        );
    }
}
