//! The demo: boots every core, then one short scenario per seed idea, each printing its figures;
//! exits QEMU with status 0.
#![no_std]
#![no_main]

extern crate alloc;

#[path = "demo/percpu_ref.rs"]
mod percpu_ref;
#[path = "demo/platform.rs"]
mod platform;
#[path = "demo/rcu.rs"]
mod rcu;
#[path = "demo/rwsem.rs"]
mod rwsem;

use quiescent::smp;

fn main() -> i32 {
    defmt::println!("cores online: {}/{}", smp::num_online(), smp::num_listed());
    defmt::println!("quiescent on {=str}", quiescent::board::NAME);
    platform::run();
    rcu::run();
    rwsem::run();
    percpu_ref::run();
    0
}

quiescent::entry!(main);
