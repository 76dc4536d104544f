//! Benchmarks (`make bench`). Each figure line states its mode: `mode=icount` when QEMU runs with
//! `-icount shift=0` (1 instruction = 1 ns of virtual time, so "ns" are exact instruction counts),
//! `mode=mttcg` otherwise (real time; compare rows of one run only).
#![no_std]
#![no_main]

extern crate alloc;

#[path = "common.rs"]
mod common;
#[path = "percpu_ref.rs"]
mod percpu_ref;
#[path = "rcu.rs"]
mod rcu;
#[path = "rwsem.rs"]
mod rwsem;

fn main() -> i32 {
    let mode = common::mode();
    defmt::println!("bench: {} cores, mode={=str}", quiescent::smp::num_online(), mode);
    rcu::run();
    rwsem::run();
    percpu_ref::run();
    0
}

quiescent::entry!(main);
