//! The demo: boots every core, shows what each did, and exits QEMU with status 0.
#![no_std]
#![no_main]

use quiescent::{arch, percpu, smp};

fn main() -> i32 {
    defmt::println!("cores online: {}/{}", smp::num_online(), smp::num_listed());
    defmt::println!("quiescent on {=str}, counter at {} Hz", quiescent::board::NAME, arch::counter_freq());
    let reports = smp::on_each_cpu(|cpu| {
        let sp: usize;
        // SAFETY: reads the stack pointer; no memory effects.
        unsafe { core::arch::asm!("mov {}, sp", out(reg) sp) };
        (cpu, smp::mpidr_of(cpu), quiescent::entry_el(cpu), arch::current_el(), arch::tpidr(), sp, percpu::cpu_id())
    });
    for (cpu, mpidr, entry_el, el, tpidr, sp, id) in reports {
        defmt::println!(
            "  core {}: MPIDR {=u64:#x}, entered at EL{}, running at EL{}, TPIDR_EL1 {=usize:#x}, sp {=usize:#x}, per-cpu id {}",
            cpu, mpidr, entry_el, el, tpidr, sp, id
        );
    }
    0
}

quiescent::entry!(main);
