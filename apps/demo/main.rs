//! The demo: boots every core, then one short scenario per seed idea, each printing its figures;
//! exits QEMU with status 0.
#![no_std]
#![no_main]

extern crate alloc;

mod percpu_ref;
mod platform;
mod rcu;
mod rwsem;

use quiescent::smp::{self, Ctx};

/// The most cores the lock scenarios (rcu, rwsem) run on. With more vCPUs than host cores every
/// spinning reader holds a host core, and a spinning writer (`spin::RwLock`'s) may wait for
/// minutes for all of them to be descheduled at once; past 8 cores those figures would measure
/// the host's scheduler, so the other cores stay idle there.
const SCENARIO_CORES: usize = 8;

/// The online cores the lock scenarios use (see [`SCENARIO_CORES`]), core 0 first.
fn scenario_cores() -> alloc::vec::Vec<usize> {
    smp::online_cpus().take(SCENARIO_CORES).collect()
}

fn main(ctx: &mut Ctx) -> i32 {
    defmt::println!("cores online: {}/{}", smp::num_online(), smp::num_listed());
    defmt::println!("quiescent on {=str}", quiescent::board::NAME);
    platform::run(ctx);
    rcu::run(ctx);
    rwsem::run(ctx);
    percpu_ref::run(ctx);
    0
}

quiescent::entry!(main);
